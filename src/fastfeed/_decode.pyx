"""Upstox Market Data Feed v3 decoder: FeedResponse bytes into the store (see _parse.pxd)."""

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.math cimport NAN
from libc.stdint cimport uint8_t, int32_t, uint32_t, int64_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

from fastfeed._clock cimport now_ns
from fastfeed._parse cimport *
from fastfeed._store cimport *

# Keys refused a row that are remembered (so reported once each); past this many, refusals are
# only counted, and memory stays bounded whatever a server sends.
cdef Py_ssize_t REJECTED_KEPT = 65536
# touch() warms at most this many of the last frame's rows: the small frames latency is about.
cdef Py_ssize_t TOUCH_ROWS = 64


# --- commit: scratch to store ------------------------------------------------------------------

cdef inline int32_t kind_of(SFeed* f) noexcept nogil:
    if f.case_ == CASE_LTPC:
        return KIND_LTPC
    if f.case_ == CASE_GREEKS:
        return KIND_GREEKS
    if f.case_ == CASE_FULL:
        if f.ff_case == FF_MARKET:
            return KIND_MARKET
        if f.ff_case == FF_INDEX:
            return KIND_INDEX
    return KIND_NONE


cdef void apply_bars(QuoteRow* row, Scratch* s, SFeed* f) noexcept nogil:
    cdef Py_ssize_t i
    cdef int j
    cdef SBar* b
    cdef Bar* slot
    row.bars_dropped += f.b_dropped
    for i in range(f.b_start, f.b_start + f.b_count):
        b = &s.bars[i]
        if b.interval_len >= INTERVAL_SIZE:
            row.bars_dropped += b.repeats
            continue
        slot = NULL
        if row.n_bars > MAX_BARS or row.n_bars < 0:
            row.n_bars = MAX_BARS   # never trusted: see clamp() in _store.pyx
        for j in range(row.n_bars):
            # Stored names are NUL-padded to INTERVAL_SIZE and shorter than it.
            if (same_bytes(row.bars[j].interval, <const char*>s.buf + b.interval_off,
                           b.interval_len)
                    and row.bars[j].interval[b.interval_len] == 0):
                slot = &row.bars[j]
                break
        if slot == NULL:
            if row.n_bars >= MAX_BARS:
                row.bars_dropped += b.repeats
                continue
            slot = &row.bars[row.n_bars]
            row.n_bars += 1
            memset(slot.interval, 0, INTERVAL_SIZE)
            memcpy(slot.interval, s.buf + b.interval_off, b.interval_len)
        slot.open = b.open
        slot.high = b.high
        slot.low = b.low
        slot.close = b.close
        slot.vol = b.vol
        slot.ts = b.ts


cdef void apply_feed(Store store, Scratch* s, SFeed* f, bint snapshot,
                     int64_t recv_ns) noexcept nogil:
    cdef QuoteRow* row = &store.rows[f.row]
    cdef UpdateRecord* rec
    cdef uint32_t parts = 0
    cdef int32_t kind = kind_of(f)
    cdef Py_ssize_t i, n
    cdef SQuote* q
    row.seq += 1
    FF_RELEASE_FENCE()
    if snapshot:
        memset(&row.mode, 0, sizeof(QuoteRow) - (<char*>&row.mode - <char*>row))
        row.ltpc_iep = NAN
        parts |= PART_SNAPSHOT
    row.updates += 1
    row.server_ts = s.current_ts
    row.recv_ns = recv_ns
    row.mode = f.mode
    row.flags &= ~FLAG_STALE
    if kind != KIND_NONE:
        row.kind = kind
    if f.has & H_LTPC:
        parts |= PART_LTPC
        row.ltp = f.ltpc.ltp
        row.ltt = f.ltpc.ltt
        row.ltq = f.ltpc.ltq
        row.cp = f.ltpc.cp
        if f.has & H_IEP:
            row.ltpc_iep = f.ltpc.iep
            row.flags |= FLAG_LTPC_IEP
        else:
            row.ltpc_iep = NAN
            row.flags &= ~FLAG_LTPC_IEP
    if kind == KIND_MARKET or kind == KIND_GREEKS:
        parts |= PART_STATS
        row.vtt = f.stats.vtt
        row.oi = f.stats.oi
        row.iv = f.stats.iv
        if kind == KIND_MARKET:
            row.atp = f.stats.atp
            row.tbq = f.stats.tbq
            row.tsq = f.stats.tsq
            row.iep = f.stats.iep
            row.rp = f.stats.rp
            row.ieq = f.stats.ieq
            row.iiq_total = f.stats.iiq_total
            row.iiq_m = f.stats.iiq_m
            row.cas_eligible = f.stats.cas_eligible
    if f.has & H_GREEKS:
        parts |= PART_GREEKS
        row.delta = f.greeks.delta
        row.theta = f.greeks.theta
        row.gamma = f.greeks.gamma
        row.vega = f.greeks.vega
        row.rho = f.greeks.rho
    if f.has & (H_LEVEL | H_FIRST):
        parts |= PART_DEPTH
        if f.has & H_LEVEL:
            n = f.q_count if f.q_count < MAX_LEVELS else MAX_LEVELS
            for i in range(n):
                q = &s.quotes[f.q_start + i]
                row.bid_p[i] = q.bid_p
                row.bid_q[i] = q.bid_q
                row.ask_p[i] = q.ask_p
                row.ask_q[i] = q.ask_q
        else:
            n = 1
            row.bid_p[0] = f.first.bid_p
            row.bid_q[0] = f.first.bid_q
            row.ask_p[0] = f.first.ask_p
            row.ask_q[0] = f.first.ask_q
        for i in range(n, row.n_levels if 0 <= row.n_levels <= MAX_LEVELS else MAX_LEVELS):
            row.bid_p[i] = 0
            row.bid_q[i] = 0
            row.ask_p[i] = 0
            row.ask_q[i] = 0
        row.n_levels = <int32_t>n
    if f.has & H_OHLC:
        parts |= PART_OHLC
        apply_bars(row, s, f)
    row.parts |= parts

    rec = store.next_record()
    rec.row = f.row
    rec.parts = parts
    rec.mode = row.mode
    rec.kind = row.kind
    rec.recv_ns = recv_ns
    rec.server_ts = s.current_ts
    rec.ltp = row.ltp
    rec.ltt = row.ltt
    rec.ltq = row.ltq
    rec.cp = row.cp
    if row.parts & PART_DEPTH:
        rec.bid_p = row.bid_p[0]
        rec.bid_q = row.bid_q[0]
        rec.ask_p = row.ask_p[0]
        rec.ask_q = row.ask_q[0]
    else:
        # A row never given depth since its last snapshot has none (both zero it): the book's
        # four cache lines need not be read for an LTPC instrument's every update.
        rec.bid_p = 0
        rec.bid_q = 0
        rec.ask_p = 0
        rec.ask_q = 0
    rec.vtt = row.vtt
    rec.oi = row.oi
    store.publish_record(rec)
    FF_RELEASE_FENCE()
    row.seq += 1


cdef class FeedDecoder:
    """FeedDecoder(max_instruments=4096, ring_capacity=65536)
--

    Decodes FeedResponse frames into a :class:`Store`: the snapshot table and the update ring.

    One writer: call ``decode`` (or the transport's ``feed``) from one thread. Readers of the
    store may be on any thread.

    ``max_instruments``: snapshot rows, one per instrument key, all allocated now; a frame that
    needs more raises InstrumentLimitError. ``ring_capacity``: records in the update ring (a
    power of two); a reader more than that behind loses the oldest.
    """

    def __cinit__(self, int max_instruments=4096, Py_ssize_t ring_capacity=1 << 16,
                  Store store=None):
        # `store`: one built by the caller (e.g. over shared memory) instead of a new one.
        self.store = Store(max_instruments, ring_capacity) if store is None else store
        max_instruments = self.store.max_instruments
        self.last_entry = <int32_t*>malloc(max_instruments * sizeof(int32_t))
        self.predicted = <int32_t*>malloc(max_instruments * sizeof(int32_t))
        if self.last_entry == NULL or self.predicted == NULL:
            raise MemoryError()
        memset(self.predicted, 0xFF, max_instruments * sizeof(int32_t))
        # The scratch keeps what the store can hold: a feed's first MAX_LEVELS depth levels, and
        # room to merge bars into twice the intervals a row keeps.
        init_scratch(&self.scratch, MAX_LEVELS, 2 * MAX_BARS)
        self._rejected = set()
        self._new_rejected = []
        self.market_status = {}
        self.cas_market_status = {}
        self.pre_open_status = {}

    def __dealloc__(self):
        free_scratch(&self.scratch)
        free(self.last_entry)
        free(self.predicted)

    def __repr__(self):
        return (f"<FeedDecoder instruments={len(self.store)}/{self.store.max_instruments} "
                f"frames={self.frames} updates={self.updates} errors={self.errors}>")

    cdef Py_ssize_t feed(self, const uint8_t* data, Py_ssize_t size, int64_t recv_ns) except -1:
        """Decode one frame into the store; returns the number of instrument updates applied."""
        cdef Scratch* s = &self.scratch
        cdef Store store = self.store
        cdef SFeed* f
        cdef Py_ssize_t i, applied = 0, unknown = 0
        cdef Py_ssize_t predictable = store.max_instruments
        cdef int32_t row
        cdef const char* key
        cdef bint snapshot

        if parse_frame(s, data, size) < 0:
            settle_scratch(s)
            self.errors += 1
            raise wire_error(s)

        # Resolve every key before touching anything, so an error leaves the store as it was.
        # Upstox sends the same keys in the same order frame after frame: the row found at this
        # position last time is tried first, by comparing key bytes, before hashing.
        # A key repeated within one frame: the last entry wins whole, as in a protobuf map, so
        # each row notes its last entry (new keys' rows in _register).
        if s.n_feeds < predictable:
            predictable = s.n_feeds
        for i in range(s.n_feeds):
            f = &s.feeds[i]
            key = <const char*>data + f.key_off
            if i < predictable:
                row = self.predicted[i]
                if (row >= 0 and store.key_len[row] == f.key_len
                        and same_bytes(store.arena + store.key_off[row], key, f.key_len)):
                    f.row = row
                    self.last_entry[row] = <int32_t>i
                    continue
            f.hash = hash_key(key, f.key_len)
            f.row = store.find(key, f.key_len, f.hash)
            if f.row < 0:
                if not utf8_valid(data + f.key_off, f.key_len):
                    settle_scratch(s)
                    self.errors += 1
                    raise utf8_error(f.key_off)
                unknown += 1
            else:
                self.last_entry[f.row] = <int32_t>i
        if unknown:
            self._register()

        # Keys refused a row (row -1) are skipped.
        if recv_ns <= 0:
            recv_ns = now_ns()
        snapshot = s.type_ == 0
        for i in range(s.n_feeds):
            f = &s.feeds[i]
            if i < predictable:
                self.predicted[i] = f.row
            if f.row >= 0 and self.last_entry[f.row] == i:
                # Far enough ahead that the slot's lines arrive before its stores wait on
                # them: on LTPC frames, 12 cut the stall a profile showed at 4 by a third.
                store.prefetch_record(12)
                apply_feed(store, s, f, snapshot, recv_ns)
                applied += 1
        self.predicted_n = predictable

        if s.has_market_info:
            self._commit_market_info()
        settle_scratch(s)
        self.frames += 1
        self.bytes += size
        self.updates += applied
        if s.type_ == 1:
            self.live_frames += 1
        elif s.type_ == 0:
            self.initial_frames += 1
        elif s.type_ == 2:
            self.market_info_frames += 1
        else:
            self.other_frames += 1
        return applied

    def touch(self):
        """Bring what a next frame with the last frame's keys will use into the cache, and change
        nothing: those rows (their first 64), the key bytes they are matched by, the scratch
        entries and the ring's next slots. Busy polling calls it between frames, so that a
        frame after a quiet spell does not wait for memory."""
        cdef Store store = self.store
        cdef Scratch* s = &self.scratch
        cdef Py_ssize_t i, n = min(self.predicted_n, TOUCH_ROWS)
        cdef char* p
        cdef char* end
        with nogil:
            for i in range(n):
                store.prefetch_row(self.predicted[i])
                store.prefetch_record(<uint64_t>i)
            if n <= s.cap_feeds:
                p = <char*>s.feeds
                end = <char*>(s.feeds + n)
                while p < end:
                    FF_PREFETCH_WRITE(p)
                    p += 64
        return None

    cdef int _register(self) except -1:
        # New keys get rows in entry order while rows last; the rest keep row -1 and are refused.
        cdef Scratch* s = &self.scratch
        cdef Store store = self.store
        cdef SFeed* f
        cdef Py_ssize_t i
        for i in range(s.n_feeds):
            f = &s.feeds[i]
            if f.row < 0:
                f.row = store.find(<const char*>s.buf + f.key_off, f.key_len, f.hash)
                if f.row < 0:
                    f.row = store.add(<const char*>s.buf + f.key_off, f.key_len, f.hash)
                    if f.row < 0:
                        self._reject(f)
                        continue
                self.last_entry[f.row] = <int32_t>i
        return 0

    cdef int _reject(self, SFeed* f) except -1:
        cdef str key
        self.rejected_updates += 1
        if len(self._rejected) >= REJECTED_KEPT:
            return 0
        key = text_at(self.scratch.buf, f.key_off, f.key_len)
        if key not in self._rejected:
            self._rejected.add(key)
            self._new_rejected.append(key)
            self.rejected_keys += 1
        return 0

    def take_rejected(self):
        """The instrument keys refused a row (all ``max_instruments`` taken) since the last call,
        oldest first. Each key is reported once in the decoder's life (up to 65,536 keys;
        ``rejected_updates`` counts every update dropped)."""
        keys = self._new_rejected
        self._new_rejected = []
        return keys

    @property
    def scratch_bytes(self):
        """Bytes held by the scratch area between frames (bounded: see _parse.pxd)."""
        return scratch_bytes(&self.scratch)

    cdef int _commit_market_info(self) except -1:
        cdef Scratch* s = &self.scratch
        cdef SStatus* st
        cdef Py_ssize_t i
        for i in range(s.n_statuses):
            st = &s.statuses[i]
            key = text_at(s.buf, st.key_off, st.key_len)
            if st.map == MI_SEGMENT:
                self.market_status[key] = status_name(st.value)
            elif st.map == MI_CAS:
                self.cas_market_status[key] = (
                    text_at(s.buf, st.status_off, st.status_len), st.updated)
            else:
                self.pre_open_status[key] = (
                    text_at(s.buf, st.status_off, st.status_len), st.updated)
        return 0

    def decode(self, payload, recv_ns=None):
        """Decode one FeedResponse frame (bytes, bytearray or memoryview).

        Returns the number of instrument updates applied. Raises :class:`DecodeError` for bytes
        protobuf would reject, and then nothing changes but the ``errors`` counter. When all
        ``max_instruments`` rows are taken, the frame's known keys are still applied and its new
        keys are refused: counted in ``rejected_keys`` (once per key) and ``rejected_updates``,
        and listed by ``take_rejected()``.
        """
        cdef Py_buffer view
        cdef int64_t ns = 0 if recv_ns is None else recv_ns
        if type(payload) is bytes:
            return self.feed(<const uint8_t*>PyBytes_AS_STRING(payload),
                             PyBytes_GET_SIZE(payload), ns)
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            return self.feed(<const uint8_t*>view.buf, view.len, ns)
        finally:
            PyBuffer_Release(&view)

    # The store's reader API, here too so that the decoder is the one object most code holds.

    def quote(self, key):
        """The latest :class:`Quote` of ``key``, or None for a key never seen."""
        return self.store.quote(key)

    def reader(self, bint from_start=False):
        """A new reader of the update ring with its own cursor: its first ``read()`` returns
        what was decoded after this call, or, with ``from_start=True``, everything still in the
        ring."""
        return self.store.reader(from_start)

    @property
    def snapshot(self):
        return self.store.snapshot

    @property
    def ring(self):
        return self.store.ring

    def stats(self):
        """Counters, as a dict."""
        return {
            "frames": self.frames, "bytes": self.bytes, "updates": self.updates,
            "errors": self.errors, "initial_feed": self.initial_frames,
            "live_feed": self.live_frames, "market_info": self.market_info_frames,
            "other": self.other_frames, "instruments": len(self.store),
            "rejected_keys": self.rejected_keys, "rejected_updates": self.rejected_updates,
        }
