"""The bridge's outbox: the latest unsent update of every subject, written out as NATS ``HPUB``s.

Called once per frame right after the decoder applied it, while the frame's bytes are still
where the decoder read them, with no Python object per entry. Each applied map entry is copied
into the slot of its subject (instrument row x parts carried, see subjects.py) and the slot goes
to the back of two lists: the live list and the state list. ``take`` writes the live list,
oldest first, to the core NATS subject ``<prefix>.live.<token>.<parts>`` (no stream stores it),
``take_state`` the state list to ``<prefix>.<token>.<parts>``, which the JetStream stream keeps
(last message per subject), each as

    HPUB <subject> <header bytes> <total bytes>\\r\\n
    NATS/1.0\\r\\nFastfeed-Recv-Ns: <hub receive time, epoch ns>\\r\\nFastfeed-Seq: <n>\\r\\n\\r\\n
    <FeedResponse: type, currentTs, feeds = the entry's bytes as Upstox sent them>\\r\\n

``Fastfeed-Seq`` numbers the updates bridge-wide: (receive time, seq) orders any two updates of
a subject, so a reader can tell a copy it already has from a newer one. While NATS keeps up every
update goes out live. When it does not, an update still waiting when the next one of its subject
arrives is first written out as it is, into a spill buffer of ``capacity`` bytes that the next
``take`` sends first: a backlog the feed's loop applies in one turn, whose frames carry the same
instruments, loses nothing. Only when the spill is full is the older update replaced by the newer
(counted in ``dropped``): memory stays bounded by the number of subjects and the spill, and what
is sent is always the newest. The state list is taken every few milliseconds
(the bridge's ``state_interval``): a subject updated several times in between is stored once, its
newest update (the others counted in ``conflated``). ``resend_all`` queues every slot on the
state list again (after a reconnect, when the server may have lost what was in flight, or
restarted empty).
"""

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, int32_t, uint32_t, int64_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy

from fastfeed._decode cimport FeedDecoder
from fastfeed._parse cimport Scratch, SFeed
from fastfeed._store cimport Store, UpdateRecord

from fastfeed.nats.subjects import check_prefix, live_prefix, parts_token, status_subject, token_of

RECV_HEADER = "Fastfeed-Recv-Ns"
SEQ_HEADER = "Fastfeed-Seq"
cdef bytes HEADER_START = b"NATS/1.0\r\nFastfeed-Recv-Ns: "
cdef Py_ssize_t HEADER_START_LEN = 28
cdef bytes HEADER_SEQ = b"\r\nFastfeed-Seq: "
cdef Py_ssize_t HEADER_SEQ_LEN = 16
# HPUB line (without the subject), header block and FeedResponse framing: at most this many.
cdef Py_ssize_t OVERHEAD = 192
cdef int32_t NO_SLOT = -1
cdef int32_t STATUS_ROW = -1
cdef int PARTS = 64             # parts bit sets (6 PART_* bits)

# A slot sits on two lists at once, each oldest first: LIVE, updates not yet published, and
# STATE, subjects whose newest update the stream does not hold yet. One pair of list functions
# serves both, through the slot's link for that list.
cdef enum:
    LIVE = 0
    STATE = 1


ctypedef struct Link:
    int32_t prev
    int32_t next
    bint queued


ctypedef struct Chain:
    int32_t head
    int32_t tail
    Py_ssize_t n


ctypedef struct Slot:
    int32_t row                 # STATUS_ROW for the market status
    uint32_t parts
    int32_t type_
    uint8_t field               # FeedResponse field of the body: 2 feeds, 4 marketInfo
    int64_t ts
    int64_t recv_ns
    uint64_t seq                # order of the update held, bridge-wide
    char* data                  # the entry's (or MarketInfo's) bytes
    Py_ssize_t len
    Py_ssize_t cap
    Link links[2]               # on the LIVE and STATE lists


cdef inline Py_ssize_t put_varint(char* p, uint64_t v) noexcept nogil:
    cdef Py_ssize_t n = 0
    while v >= 0x80:
        p[n] = <char>((v & 0x7F) | 0x80)
        v >>= 7
        n += 1
    p[n] = <char>v
    return n + 1


cdef inline Py_ssize_t put_decimal(char* p, uint64_t v) noexcept nogil:
    cdef char tmp[20]
    cdef Py_ssize_t n = 0, i
    while True:
        tmp[n] = <char>(48 + v % 10)
        v //= 10
        n += 1
        if v == 0:
            break
    for i in range(n):
        p[i] = tmp[n - 1 - i]
    return n


cdef inline Py_ssize_t varint_size(uint64_t v) noexcept nogil:
    cdef Py_ssize_t n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef class Outbox:
    """Latest unsent update per subject, and the send list; see the module docstring."""

    cdef char* buf              # take()'s output
    cdef char* spill            # live HPUBs of updates replaced before taken; sent first
    cdef Py_ssize_t spill_used
    cdef Py_ssize_t spilled     # messages in spill
    cdef readonly Py_ssize_t capacity
    cdef Slot* slots
    cdef int32_t n_slots
    cdef int32_t cap_slots
    cdef readonly int32_t max_slots
    cdef int32_t* slot_of       # row * PARTS + parts -> slot
    cdef int32_t max_rows
    cdef int32_t status_slot
    cdef Chain chains[2]        # the LIVE and STATE lists
    cdef uint64_t seq
    cdef bytes prefix
    cdef bytes live_prefix
    cdef list subjects          # row -> b"<token>.", filled as rows appear
    cdef list part_tokens       # parts bit set -> b"<parts>"
    cdef bytes status           # b"market_status"
    cdef readonly uint64_t updates    # instrument updates captured since start
    cdef readonly uint64_t sent       # written out by take()
    cdef readonly uint64_t dropped    # replaced by a newer update of their subject before sent
    cdef readonly uint64_t state_sent # written out by take_state()
    cdef readonly uint64_t conflated  # replaced by a newer update of their subject before stored
    cdef readonly uint64_t refused    # no slot left (max_slots)
    cdef readonly uint64_t unmatched  # frames whose entries could not be matched to the ring
    cdef readonly uint64_t taken_bytes

    def __cinit__(self, str prefix="upstox", Py_ssize_t capacity=1 << 20,
                  int max_instruments=4096, int max_slots=0):
        cdef Py_ssize_t i
        if capacity < 4096:
            raise ValueError("capacity must be at least 4096 bytes")
        if max_instruments < 1:
            raise ValueError("max_instruments must be positive")
        self.buf = <char*>malloc(capacity)
        self.spill = <char*>malloc(capacity)
        self.slot_of = <int32_t*>malloc(<Py_ssize_t>max_instruments * PARTS * sizeof(int32_t))
        if self.buf == NULL or self.spill == NULL or self.slot_of == NULL:
            raise MemoryError()
        for i in range(<Py_ssize_t>max_instruments * PARTS):
            self.slot_of[i] = NO_SLOT
        self.capacity = capacity
        self.max_rows = max_instruments
        self.max_slots = max_slots if max_slots > 0 else 16 * max_instruments + 1
        self.status_slot = NO_SLOT
        for i in range(2):
            self.chains[i].head = NO_SLOT
            self.chains[i].tail = NO_SLOT
            self.chains[i].n = 0
        self.prefix = (check_prefix(prefix) + ".").encode()
        self.live_prefix = (live_prefix(prefix) + ".").encode()
        self.subjects = []
        self.part_tokens = [parts_token(p).encode() for p in range(PARTS)]
        self.status = status_subject(prefix)[len(prefix) + 1:].encode()

    def __dealloc__(self):
        cdef int32_t i
        for i in range(self.n_slots):
            free(self.slots[i].data)
        free(self.slots)
        free(self.slot_of)
        free(self.buf)
        free(self.spill)

    @property
    def pending(self):
        """Updates waiting to be taken."""
        return self.chains[LIVE].n + self.spilled

    @property
    def state_pending(self):
        """Subjects whose newest update the stream does not have yet."""
        return self.chains[STATE].n

    @property
    def slot_count(self):
        return self.n_slots

    cdef int32_t _new_slot(self, int32_t row, uint32_t parts) except -2:
        cdef int32_t cap
        cdef Slot* grown
        cdef Slot* sl
        cdef int k
        if self.n_slots == self.max_slots:
            return NO_SLOT
        if self.n_slots == self.cap_slots:
            cap = self.cap_slots * 2 if self.cap_slots else 256
            if cap > self.max_slots:
                cap = self.max_slots
            grown = <Slot*>realloc(self.slots, cap * sizeof(Slot))
            if grown == NULL:
                raise MemoryError()
            self.slots = grown
            self.cap_slots = cap
        sl = &self.slots[self.n_slots]
        sl.row = row
        sl.parts = parts
        sl.data = NULL
        sl.len = 0
        sl.cap = 0
        for k in range(2):
            sl.links[k].prev = NO_SLOT
            sl.links[k].next = NO_SLOT
            sl.links[k].queued = False
        self.n_slots += 1
        return self.n_slots - 1

    cdef inline void _unlink(self, int which, int32_t i) noexcept nogil:
        cdef Chain* ch = &self.chains[which]
        cdef Link* ln = &self.slots[i].links[which]
        if ln.prev != NO_SLOT:
            self.slots[ln.prev].links[which].next = ln.next
        else:
            ch.head = ln.next
        if ln.next != NO_SLOT:
            self.slots[ln.next].links[which].prev = ln.prev
        else:
            ch.tail = ln.prev
        ln.prev = NO_SLOT
        ln.next = NO_SLOT
        ln.queued = False
        ch.n -= 1

    cdef inline void _append(self, int which, int32_t i) noexcept nogil:
        cdef Chain* ch = &self.chains[which]
        cdef Link* ln = &self.slots[i].links[which]
        ln.prev = ch.tail
        ln.next = NO_SLOT
        if ch.tail != NO_SLOT:
            self.slots[ch.tail].links[which].next = i
        else:
            ch.head = i
        ch.tail = i
        ln.queued = True
        ch.n += 1

    cdef int _store(self, int32_t i, const uint8_t* body, Py_ssize_t size, int32_t type_,
                    int64_t ts, int64_t recv_ns, uint8_t field) except -1:
        cdef Slot* sl = &self.slots[i]
        cdef char* grown
        cdef Py_ssize_t cap, n
        if sl.links[LIVE].queued:
            # The older update was never sent: it goes out as it is, from the spill, if there is
            # room; else the newer one replaces it.
            self._unlink(LIVE, i)
            n = self._format(sl, self.spill + self.spill_used, self.capacity - self.spill_used,
                             True)
            if n:
                self.spill_used += n
                self.spilled += 1
            else:
                self.dropped += 1
        if size > sl.cap:
            cap = sl.cap * 2 if sl.cap else 64
            while cap < size:
                cap *= 2
            grown = <char*>realloc(sl.data, cap)
            if grown == NULL:
                raise MemoryError()
            sl = &self.slots[i]
            sl.data = grown
            sl.cap = cap
        memcpy(sl.data, body, size)
        sl.len = size
        sl.type_ = type_
        sl.ts = ts
        sl.recv_ns = recv_ns
        sl.field = field
        self.seq += 1
        sl.seq = self.seq
        if sl.row != STATUS_ROW:  # the market status goes to the stream only: it is rare
            self._append(LIVE, i)
            self.updates += 1
        if sl.links[STATE].queued:
            self.conflated += 1  # the stream gets only the newest of this subject
            self._unlink(STATE, i)
        self._append(STATE, i)
        return 0

    cdef int _learn_rows(self, Store store) except -1:
        cdef list keys = store.keys
        while len(self.subjects) < len(keys):
            self.subjects.append(token_of(keys[len(self.subjects)]).encode() + b".")
        return 0

    cpdef Py_ssize_t capture(self, FeedDecoder decoder, Py_ssize_t applied):
        """Take in the frame the decoder applied last (`applied` updates): every applied entry
        into its subject's slot. Returns the updates taken in."""
        cdef Scratch* s = &decoder.scratch
        cdef Store store = decoder.store
        cdef SFeed* f
        cdef UpdateRecord* rec
        cdef Py_ssize_t i, j = 0, n = 0, taken = 0
        cdef int32_t k
        cdef uint64_t first
        cdef Py_ssize_t at
        for i in range(s.n_feeds):
            if decoder.last_entry[s.feeds[i].row] == i:
                n += 1
        if n != applied or <uint64_t>applied > store.head or applied > store.ring_capacity:
            self.unmatched += 1   # not the frame the decoder applied last: nothing to match
            return 0
        if <Py_ssize_t>len(self.subjects) < len(store.keys):
            self._learn_rows(store)
        first = store.head - <uint64_t>applied
        for i in range(s.n_feeds):
            f = &s.feeds[i]
            if decoder.last_entry[f.row] != i:
                continue
            rec = &store.records[(first + <uint64_t>j) & store.ring_mask]
            j += 1
            if f.row >= self.max_rows:
                self.refused += 1
                continue
            at = <Py_ssize_t>f.row * PARTS + (rec.parts & (PARTS - 1))
            k = self.slot_of[at]
            if k == NO_SLOT:
                k = self._new_slot(f.row, rec.parts & (PARTS - 1))
                if k == NO_SLOT:
                    self.refused += 1
                    continue
                self.slot_of[at] = k
            self._store(k, s.buf + f.entry_off, f.entry_len, s.type_, s.current_ts,
                        rec.recv_ns, 0x12)
            taken += 1
        return taken

    cdef bint _status(self, const uint8_t* body, Py_ssize_t size, int32_t type_, int64_t ts) except -1:
        if self.status_slot == NO_SLOT:
            self.status_slot = self._new_slot(STATUS_ROW, 0)
            if self.status_slot == NO_SLOT:
                self.refused += 1
                return False
        self._store(self.status_slot, body, size, type_, ts, 0, 0x22)
        return True

    cpdef bint capture_status(self, FeedDecoder decoder):
        """Take in the MarketInfo of the frame the decoder read last, if it had one."""
        cdef Scratch* s = &decoder.scratch
        if not s.has_market_info:
            return False
        return self._status(s.buf + s.info_off, s.info_len, s.type_, s.current_ts)

    def queue_status(self, bytes market_info, int64_t current_ts):
        """Take in a MarketInfo message's bytes, sent as a market_info frame."""
        return self._status(<const uint8_t*>PyBytes_AS_STRING(market_info),
                            PyBytes_GET_SIZE(market_info), 2, current_ts)

    def resend_all(self):
        """Queue every subject's latest update for the stream again, in the order they arrived."""
        cdef int32_t i
        order = sorted((self.slots[i].seq, i) for i in range(self.n_slots) if self.slots[i].len)
        while self.chains[STATE].head != NO_SLOT:
            self._unlink(STATE, self.chains[STATE].head)
        for _, i in order:
            self._append(STATE, i)
        return len(order)

    cdef Py_ssize_t _format(self, Slot* sl, char* p, Py_ssize_t room, bint live):
        """One HPUB into p; 0 if it does not fit in `room` bytes."""
        cdef bytes subject, parts
        cdef bytes prefix = self.live_prefix if live else self.prefix
        cdef Py_ssize_t plen, hlen, ts_len, seq_len
        cdef char* start = p
        cdef char hdr_num[20]
        cdef char seq_num[20]
        if sl.row == STATUS_ROW:
            subject = self.status
            parts = b""
        else:
            subject = <bytes>self.subjects[sl.row]
            parts = <bytes>self.part_tokens[sl.parts]
        if (PyBytes_GET_SIZE(prefix) + PyBytes_GET_SIZE(subject) + PyBytes_GET_SIZE(parts)
                + sl.len + OVERHEAD > room):
            return 0
        ts_len = put_decimal(hdr_num, <uint64_t>sl.recv_ns if sl.recv_ns > 0 else 0)
        seq_len = put_decimal(seq_num, sl.seq)
        hlen = HEADER_START_LEN + ts_len + HEADER_SEQ_LEN + seq_len + 4
        plen = 0
        if sl.type_ != 0:
            plen += 1 + varint_size(<uint64_t><int64_t>sl.type_)
        if sl.ts != 0:
            plen += 1 + varint_size(<uint64_t>sl.ts)
        plen += 1 + varint_size(<uint64_t>sl.len) + sl.len
        memcpy(p, b"HPUB ", 5)
        p += 5
        memcpy(p, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix))
        p += PyBytes_GET_SIZE(prefix)
        memcpy(p, PyBytes_AS_STRING(subject), PyBytes_GET_SIZE(subject))
        p += PyBytes_GET_SIZE(subject)
        memcpy(p, PyBytes_AS_STRING(parts), PyBytes_GET_SIZE(parts))
        p += PyBytes_GET_SIZE(parts)
        p[0] = b' '
        p += 1
        p += put_decimal(p, hlen)
        p[0] = b' '
        p += 1
        p += put_decimal(p, hlen + plen)
        p[0] = b'\r'
        p[1] = b'\n'
        p += 2
        memcpy(p, PyBytes_AS_STRING(HEADER_START), HEADER_START_LEN)
        p += HEADER_START_LEN
        memcpy(p, hdr_num, ts_len)
        p += ts_len
        memcpy(p, PyBytes_AS_STRING(HEADER_SEQ), HEADER_SEQ_LEN)
        p += HEADER_SEQ_LEN
        memcpy(p, seq_num, seq_len)
        p += seq_len
        memcpy(p, b"\r\n\r\n", 4)
        p += 4
        if sl.type_ != 0:
            p[0] = 0x08
            p += 1 + put_varint(p + 1, <uint64_t><int64_t>sl.type_)
        if sl.ts != 0:
            p[0] = 0x18
            p += 1 + put_varint(p + 1, <uint64_t>sl.ts)
        p[0] = <char>sl.field
        p += 1 + put_varint(p + 1, <uint64_t>sl.len)
        memcpy(p, sl.data, sl.len)
        p += sl.len
        p[0] = b'\r'
        p[1] = b'\n'
        p += 2
        return p - start

    def take(self):
        """HPUB commands for the waiting live updates, oldest first, up to ``capacity`` bytes, as
        one bytes object (None if nothing waits). What did not fit waits for the next take."""
        return self._take(LIVE)

    def take_state(self):
        """As ``take``, for the stream's subjects: the newest update of every subject changed
        since the last take_state, oldest first."""
        return self._take(STATE)

    cdef object _take(self, int which):
        cdef Py_ssize_t used = 0, n
        cdef int32_t i
        cdef bint live = which == LIVE
        if live and self.spilled:   # older than anything on the list: first
            memcpy(self.buf, self.spill, self.spill_used)
            used = self.spill_used
            self.sent += self.spilled
            self.spill_used = 0
            self.spilled = 0
        while self.chains[which].head != NO_SLOT:
            i = self.chains[which].head
            n = self._format(&self.slots[i], self.buf + used, self.capacity - used, live)
            if n == 0:
                if used == 0:   # larger than the whole buffer: it can never go
                    self._unlink(which, i)
                    if live:
                        self.refused += 1
                    continue
                break
            used += n
            self._unlink(which, i)
            if live:
                self.sent += 1
            else:
                self.state_sent += 1
        if used == 0:
            return None
        if live:
            self.taken_bytes += used
        return PyBytes_FromStringAndSize(self.buf, used)
