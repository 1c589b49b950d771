"""NatsFeed's receive path: the NATS protocol stream scanned in C, its consumer's messages decoded.

nats-py hands every chunk it reads from the socket to this scanner instead of its own parser.
Messages for the JetStream push consumer's subscription ``sid`` (the stream: the state) and for
the live subscriptions (``watch_live``: core NATS, every update) are decoded here, straight from
the chunk, with the hub's receive time from their header: no Python object per message. Every
other protocol unit (PING, INFO, +OK, -ERR, other subscriptions' messages) is handed back whole,
in order, for nats-py's own parser.

The same update can come twice (live, then the stream's copy) and the two paths interleave, so
per subject (``<token>.<parts>``) the (Fastfeed-Recv-Ns, Fastfeed-Seq) of the newest update
applied is kept, and anything not newer is skipped (``stale``). Which order the subjects of one
instrument are applied in matters (a full update, then an ltpc-only one, is not the same as the
reverse), so live messages are held back (``live_buffer`` bytes; more starts the hold again)
after every ``watch`` until the stream has delivered an update at least as new as the first one
held: the bridge stores in the order updates arrived, so by then the stream has delivered every
older update that only it has; the held ones are then applied in order and live ones from then on.

Wire format (NATS client protocol):
    MSG <subject> <sid> [reply] <#bytes>\\r\\n<payload>\\r\\n
    HMSG <subject> <sid> [reply] <#header bytes> <#total bytes>\\r\\n<header><payload>\\r\\n
JetStream's reply subject carries the consumer's counters:
    $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>
"""

from libc.stdint cimport uint8_t, int64_t, uint64_t
from libc.stdlib cimport calloc, malloc, realloc, free
from libc.string cimport memcpy, memmove, memcmp
from cpython.bytes cimport PyBytes_FromStringAndSize

from fastfeed._clock cimport now_ns
from fastfeed._decode cimport FeedDecoder

import numpy as np

cdef Py_ssize_t MAX_LINE = 64 * 1024       # a control line longer than this is not NATS
cdef const char* RECV = b"Fastfeed-Recv-Ns: "
cdef Py_ssize_t RECV_LEN = 18
cdef const char* SEQ = b"Fastfeed-Seq: "
cdef Py_ssize_t SEQ_LEN = 14
cdef const char* STATUS = b"NATS/1.0 "
cdef Py_ssize_t STATUS_LEN = 9
cdef int STREAM_MSG = 1
cdef int LIVE_MSG = 2


ctypedef struct Seen:
    uint64_t h                  # 0: an empty place
    Py_ssize_t off              # the subject key in the key arena
    Py_ssize_t len
    int64_t recv
    uint64_t seq


ctypedef struct Held:           # a live message held back, followed by its key and payload
    int64_t recv
    uint64_t seq
    Py_ssize_t key_len
    Py_ssize_t size


cdef inline bint newer(int64_t recv, uint64_t seq, int64_t than_recv, uint64_t than_seq) noexcept nogil:
    return recv > than_recv or (recv == than_recv and seq > than_seq)


cdef inline Py_ssize_t held_size(Py_ssize_t key_len, Py_ssize_t size) noexcept nogil:
    return (<Py_ssize_t>sizeof(Held) + key_len + size + 7) & ~(<Py_ssize_t>7)   # Held aligned


cdef inline uint64_t fnv(const char* p, Py_ssize_t n) noexcept nogil:
    cdef uint64_t h = 14695981039346656037ULL
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ <uint8_t>p[i]) * 1099511628211ULL
    return h if h else 1


cdef inline uint64_t header_uint(const char* hdr, Py_ssize_t hdr_len, const char* name,
                                 Py_ssize_t name_len) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef uint64_t v = 0
    for i in range(hdr_len - name_len):
        if hdr[i] == name[0] and memcmp(hdr + i, name, name_len) == 0:
            j = i + name_len
            while j < hdr_len and hdr[j] != b'\r':
                j += 1
            if not parse_uint(hdr + i + name_len, j - i - name_len, &v):
                v = 0
            break
    return v


cdef inline Py_ssize_t find_crlf(const char* p, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, end - 1):
        if p[i] == b'\r' and p[i + 1] == b'\n':
            return i
    return -1


cdef inline bint parse_uint(const char* p, Py_ssize_t n, uint64_t* out) noexcept nogil:
    cdef uint64_t v = 0
    cdef Py_ssize_t i
    if n <= 0 or n > 19:
        return False
    for i in range(n):
        if p[i] < b'0' or p[i] > b'9':
            return False
        v = v * 10 + <uint64_t>(p[i] - 48)
    out[0] = v
    return True


cdef class MsgScanner:
    """See the module docstring. ``sid`` is the consumer's subscription (0: none yet)."""

    cdef FeedDecoder decoder
    cdef char* buf
    cdef Py_ssize_t len
    cdef Py_ssize_t cap
    cdef public uint64_t sid
    cdef public uint64_t next_dseq     # the consumer sequence expected next (0: any)
    cdef readonly bint gap             # a consumer sequence was skipped: resync
    cdef public bint caught_up         # nothing more was pending (a message or the consumer said so)
    cdef readonly uint64_t last_sseq
    cdef readonly uint64_t messages
    cdef readonly uint64_t heartbeats
    cdef readonly uint64_t decode_errors
    cdef readonly uint64_t applied     # updates applied since the last take_applied()
    cdef readonly int64_t last_activity_ns
    cdef int64_t* lat
    cdef readonly uint64_t lat_n
    cdef Py_ssize_t lat_cap
    cdef list forward
    cdef public uint64_t live_lo       # live subscriptions: sids live_lo..live_hi (0: none)
    cdef public uint64_t live_hi
    cdef readonly bint live_on         # live messages are applied as they come (not held)
    cdef readonly uint64_t live_messages
    cdef readonly uint64_t stale       # skipped: an update as new was applied already
    cdef readonly uint64_t held_over   # held live messages let go because the hold was full
    cdef Py_ssize_t stream_key_off     # len(b"<prefix>.")
    cdef Py_ssize_t live_key_off       # len(b"<prefix>.live.")
    cdef int64_t stream_recv           # the newest update the stream delivered since watch()
    cdef uint64_t stream_seq
    cdef int64_t first_recv            # the first live message held
    cdef uint64_t first_seq
    cdef Seen* seen
    cdef Py_ssize_t seen_cap
    cdef Py_ssize_t seen_n
    cdef char* keys
    cdef Py_ssize_t keys_len
    cdef Py_ssize_t keys_cap
    cdef char* held
    cdef Py_ssize_t held_len
    cdef readonly Py_ssize_t held_count
    cdef readonly Py_ssize_t live_buffer

    def __cinit__(self, FeedDecoder decoder, Py_ssize_t latency_samples=1 << 16, *,
                  str prefix="upstox", Py_ssize_t live_buffer=32 << 20):
        if latency_samples < 1 or latency_samples & (latency_samples - 1):
            raise ValueError("latency_samples must be a power of two")
        if live_buffer < 4096:
            raise ValueError("live_buffer must be at least 4096 bytes")
        self.stream_key_off = len(prefix) + 1
        self.live_key_off = len(prefix) + 6
        self.live_buffer = live_buffer
        self.seen_cap = 1024
        self.seen = <Seen*>calloc(self.seen_cap, sizeof(Seen))
        self.keys_cap = 1 << 16
        self.keys = <char*>malloc(self.keys_cap)
        self.held = <char*>malloc(live_buffer)
        if self.seen == NULL or self.keys == NULL or self.held == NULL:
            raise MemoryError()
        self.decoder = decoder
        self.cap = 1 << 16
        self.buf = <char*>malloc(self.cap)
        self.lat = <int64_t*>malloc(latency_samples * sizeof(int64_t))
        if self.buf == NULL or self.lat == NULL:
            raise MemoryError()
        self.lat_cap = latency_samples
        self.forward = []

    def __dealloc__(self):
        free(self.buf)
        free(self.lat)
        free(self.seen)
        free(self.keys)
        free(self.held)

    def reset(self):
        """A new connection: whatever was buffered belonged to the old one."""
        self.len = 0

    def watch(self, uint64_t sid, bint caught_up):
        """Decode the messages of subscription `sid` from now on (a new consumer); hold live
        messages back until the stream has caught up with them."""
        self.sid = sid
        self.next_dseq = 1
        self.gap = False
        self.caught_up = caught_up
        self.live_on = False
        self.stream_recv = 0
        self.stream_seq = 0
        self.held_len = 0
        self.held_count = 0

    def watch_live(self, uint64_t lo, uint64_t hi):
        """The live subscriptions are sids `lo` to `hi`."""
        self.live_lo = lo
        self.live_hi = hi

    @property
    def held_bytes(self):
        return self.held_len

    cdef Seen* _seen(self, const char* k, Py_ssize_t n) except NULL:
        """The place of subject key `k`, added (as never applied) if it is new."""
        cdef uint64_t h = fnv(k, n)
        cdef Py_ssize_t mask = self.seen_cap - 1
        cdef Py_ssize_t i = <Py_ssize_t>(h & <uint64_t>mask)
        cdef Seen* e
        cdef char* grown
        while True:
            e = &self.seen[i]
            if e.h == 0:
                break
            if e.h == h and e.len == n and memcmp(self.keys + e.off, k, n) == 0:
                return e
            i = (i + 1) & mask
        if 2 * (self.seen_n + 1) > self.seen_cap:
            self._grow_seen()
            return self._seen(k, n)
        if self.keys_len + n > self.keys_cap:
            while self.keys_len + n > self.keys_cap:
                self.keys_cap *= 2
            grown = <char*>realloc(self.keys, self.keys_cap)
            if grown == NULL:
                raise MemoryError()
            self.keys = grown
        memcpy(self.keys + self.keys_len, k, n)
        e.h = h
        e.off = self.keys_len
        e.len = n
        e.recv = -1
        e.seq = 0
        self.keys_len += n
        self.seen_n += 1
        return e

    cdef int _grow_seen(self) except -1:
        cdef Seen* old = self.seen
        cdef Py_ssize_t old_cap = self.seen_cap, i, j, mask
        cdef Seen* grown = <Seen*>calloc(old_cap * 2, sizeof(Seen))
        if grown == NULL:
            raise MemoryError()
        self.seen = grown
        self.seen_cap = old_cap * 2
        mask = self.seen_cap - 1
        for i in range(old_cap):
            if old[i].h:
                j = <Py_ssize_t>(old[i].h & <uint64_t>mask)
                while grown[j].h:
                    j = (j + 1) & mask
                grown[j] = old[i]
        free(old)
        return 0

    cdef int _hold(self, const char* key, Py_ssize_t key_len, int64_t recv, uint64_t seq,
                   const char* payload, Py_ssize_t size) except -1:
        cdef Py_ssize_t need = held_size(key_len, size)
        cdef Held* m
        if self.held_len + need > self.live_buffer:
            # Full: let them all go and hold again from here. What was let go is older than what
            # is held next, so the stream delivers it before the hold ends.
            self.held_over += self.held_count
            self.held_len = 0
            self.held_count = 0
            if need > self.live_buffer:
                self.held_over += 1
                return 0
        if self.held_count == 0:
            self.first_recv = recv
            self.first_seq = seq
        m = <Held*>(self.held + self.held_len)
        m.recv = recv
        m.seq = seq
        m.key_len = key_len
        m.size = size
        memcpy(self.held + self.held_len + sizeof(Held), key, key_len)
        memcpy(self.held + self.held_len + sizeof(Held) + key_len, payload, size)
        self.held_len += need
        self.held_count += 1
        return 0

    cdef int _release(self) except -1:
        """The stream has caught up with the held live messages: apply them, go live."""
        cdef Py_ssize_t pos = 0
        cdef Held* m
        cdef const char* k
        while pos < self.held_len:
            m = <Held*>(self.held + pos)
            k = self.held + pos + sizeof(Held)
            self._apply(k, m.key_len, m.recv, m.seq, k + m.key_len, m.size)
            pos += held_size(m.key_len, m.size)
        self.held_len = 0
        self.held_count = 0
        self.live_on = True
        return 0

    cdef int _apply(self, const char* key, Py_ssize_t key_len, int64_t recv_ns, uint64_t seq,
                    const char* payload, Py_ssize_t size) except -1:
        cdef Seen* e
        cdef Py_ssize_t n
        if seq:   # from a bridge that numbers its updates
            e = self._seen(key, key_len)
            if not newer(recv_ns, seq, e.recv, e.seq):
                self.stale += 1
                return 0
            e.recv = recv_ns
            e.seq = seq
        self.messages += 1
        try:
            n = self.decoder.feed(<const uint8_t*>payload, size, recv_ns)
        except Exception:
            self.decode_errors += 1   # not a FeedResponse: counted, the store unchanged
            return 0
        self.applied += n
        if n and recv_ns > 0:
            self.lat[self.lat_n & (self.lat_cap - 1)] = now_ns() - recv_ns
            self.lat_n += 1
        return 0

    def take_applied(self):
        cdef uint64_t n = self.applied
        self.applied = 0
        return n

    def latencies(self):
        """The most recent hub-receive-to-applied delays, ns (unordered)."""
        cdef Py_ssize_t n = self.lat_n if self.lat_n < <uint64_t>self.lat_cap else self.lat_cap
        out = np.empty(n, dtype=np.int64)
        cdef int64_t[::1] view = out
        if n:
            memcpy(&view[0], self.lat, n * sizeof(int64_t))
        return out

    cdef int _append(self, const char* data, Py_ssize_t size) except -1:
        cdef Py_ssize_t cap = self.cap
        cdef char* grown
        if self.len + size > cap:
            while cap < self.len + size:
                cap *= 2
            grown = <char*>realloc(self.buf, cap)
            if grown == NULL:
                raise MemoryError()
            self.buf = grown
            self.cap = cap
        memcpy(self.buf + self.len, data, size)
        self.len += size
        return 0

    cdef void _reply(self, const char* p, Py_ssize_t n) noexcept:
        # Tokens of $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>, and
        # of the newer form with a domain and account hash before the stream and a token after.
        cdef Py_ssize_t starts[16]
        cdef Py_ssize_t ends[16]
        cdef int t = 0, sseq_i, dseq_i, pend_i
        cdef Py_ssize_t i, s = 0
        cdef uint64_t sseq, dseq, pending
        for i in range(n + 1):
            if i == n or p[i] == b'.':
                if t == 16:
                    return
                starts[t] = s
                ends[t] = i
                t += 1
                s = i + 1
        if t == 9:
            sseq_i, dseq_i, pend_i = 5, 6, 8
        elif t >= 11:
            sseq_i, dseq_i, pend_i = 7, 8, 10
        else:
            return
        if not (parse_uint(p + starts[sseq_i], ends[sseq_i] - starts[sseq_i], &sseq)
                and parse_uint(p + starts[dseq_i], ends[dseq_i] - starts[dseq_i], &dseq)
                and parse_uint(p + starts[pend_i], ends[pend_i] - starts[pend_i], &pending)):
            return
        if self.next_dseq and dseq != self.next_dseq:
            self.gap = True
        self.next_dseq = dseq + 1
        self.last_sseq = sseq
        if pending == 0:
            self.caught_up = True

    cdef int _message(self, int kind, const char* subject, Py_ssize_t subject_len,
                      const char* reply, Py_ssize_t reply_len, const char* hdr,
                      Py_ssize_t hdr_len, const char* payload, Py_ssize_t size) except -1:
        cdef int64_t recv_ns
        cdef uint64_t seq
        cdef Py_ssize_t off = self.stream_key_off if kind == STREAM_MSG else self.live_key_off
        if kind == STREAM_MSG:
            self.last_activity_ns = now_ns()
        if hdr_len >= STATUS_LEN + 3 and memcmp(hdr, STATUS, STATUS_LEN) == 0 and \
                hdr[STATUS_LEN] != b'\r':
            self.heartbeats += 1   # a status message (idle heartbeat): no data
            return 0
        recv_ns = <int64_t>header_uint(hdr, hdr_len, RECV, RECV_LEN)
        seq = header_uint(hdr, hdr_len, SEQ, SEQ_LEN)
        if off > subject_len:
            off = 0
        if kind == STREAM_MSG:
            if reply_len:
                self._reply(reply, reply_len)
            if newer(recv_ns, seq, self.stream_recv, self.stream_seq):
                self.stream_recv = recv_ns
                self.stream_seq = seq
            self._apply(subject + off, subject_len - off, recv_ns, seq, payload, size)
        else:
            self.live_messages += 1
            if self.live_on:
                return self._apply(subject + off, subject_len - off, recv_ns, seq, payload, size)
            self._hold(subject + off, subject_len - off, recv_ns, seq, payload, size)
        if (not self.live_on and self.held_count and
                not newer(self.first_recv, self.first_seq, self.stream_recv, self.stream_seq)):
            self._release()
        return 0

    def scan(self, data):
        """Take in one chunk from the socket; returns the protocol units for nats-py, in order
        (bytes), or None. Decoded messages are counted in ``applied``."""
        cdef const unsigned char[::1] view = data
        cdef Py_ssize_t pos = 0, eol, end, body, tok, ntok, i
        cdef Py_ssize_t starts[6]
        cdef Py_ssize_t ends[6]
        cdef uint64_t sid, hdr_len, total
        cdef bint hmsg
        cdef char* p
        cdef list forward = None
        if view.shape[0]:
            self._append(<const char*>&view[0], view.shape[0])
        p = self.buf
        end = self.len
        while pos < end:
            eol = find_crlf(p, pos, end)
            if eol < 0:
                if end - pos > MAX_LINE:
                    eol = end - 2  # hand it on: nats-py raises its protocol error
                else:
                    break
            hmsg = end - pos >= 5 and memcmp(p + pos, b"HMSG ", 5) == 0
            if hmsg or (end - pos >= 4 and memcmp(p + pos, b"MSG ", 4) == 0):
                # Split the control line into space-separated tokens.
                ntok = 0
                i = pos
                while i < eol and ntok < 6:
                    while i < eol and p[i] == b' ':
                        i += 1
                    if i == eol:
                        break
                    starts[ntok] = i
                    while i < eol and p[i] != b' ':
                        i += 1
                    ends[ntok] = i
                    ntok += 1
                hdr_len = 0
                # MSG subj sid [reply] n ; HMSG subj sid [reply] h n
                if (ntok < (5 if hmsg else 4) or ntok > (6 if hmsg else 5) or
                        not parse_uint(p + starts[ntok - 1], ends[ntok - 1] - starts[ntok - 1], &total) or
                        (hmsg and not parse_uint(p + starts[ntok - 2], ends[ntok - 2] - starts[ntok - 2], &hdr_len)) or
                        not parse_uint(p + starts[2], ends[2] - starts[2], &sid) or hdr_len > total):
                    # Not ours to judge: nats-py's parser says what is wrong with it.
                    if forward is None:
                        forward = []
                    forward.append(PyBytes_FromStringAndSize(p + pos, eol + 2 - pos))
                    pos = eol + 2
                    continue
                body = eol + 2
                if body + <Py_ssize_t>total + 2 > end:
                    break     # the rest of the message is still on its way
                if sid == self.sid or (self.live_lo <= sid <= self.live_hi and self.live_lo):
                    tok = 3 if ntok == (6 if hmsg else 5) else -1   # the reply, if any
                    self._message(STREAM_MSG if sid == self.sid else LIVE_MSG,
                                  p + starts[1], ends[1] - starts[1],
                                  p + starts[tok] if tok > 0 else NULL,
                                  ends[tok] - starts[tok] if tok > 0 else 0,
                                  p + body, hdr_len, p + body + hdr_len, total - hdr_len)
                else:
                    if forward is None:
                        forward = []
                    forward.append(PyBytes_FromStringAndSize(p + pos, body + total + 2 - pos))
                pos = body + total + 2
            else:
                if forward is None:
                    forward = []
                forward.append(PyBytes_FromStringAndSize(p + pos, eol + 2 - pos))
                pos = eol + 2
        if pos:
            memmove(self.buf, self.buf + pos, end - pos)
            self.len = end - pos
        return forward
