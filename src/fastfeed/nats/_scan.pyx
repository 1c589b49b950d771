"""NatsFeed's receive path: the NATS protocol stream scanned in C, its consumer's messages decoded.

nats-py hands every chunk it reads from the socket to this scanner instead of its own parser.
Messages for the one subscription ``sid`` (the JetStream push consumer's deliver subject) are
decoded here, straight from the chunk, with the hub's receive time from their header: no Python
object per message. Every other protocol unit (PING, INFO, +OK, -ERR, other subscriptions'
messages) is handed back whole, in order, for nats-py's own parser.

Wire format (NATS client protocol):
    MSG <subject> <sid> [reply] <#bytes>\\r\\n<payload>\\r\\n
    HMSG <subject> <sid> [reply] <#header bytes> <#total bytes>\\r\\n<header><payload>\\r\\n
JetStream's reply subject carries the consumer's counters:
    $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>
"""

from libc.stdint cimport uint8_t, int64_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy, memmove, memcmp
from cpython.bytes cimport PyBytes_FromStringAndSize

from fastfeed._clock cimport now_ns
from fastfeed._decode cimport FeedDecoder

import numpy as np

cdef Py_ssize_t MAX_LINE = 64 * 1024       # a control line longer than this is not NATS
cdef const char* RECV = b"Fastfeed-Recv-Ns: "
cdef Py_ssize_t RECV_LEN = 18
cdef const char* STATUS = b"NATS/1.0 "
cdef Py_ssize_t STATUS_LEN = 9


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

    def __cinit__(self, FeedDecoder decoder, Py_ssize_t latency_samples=1 << 16):
        if latency_samples < 1 or latency_samples & (latency_samples - 1):
            raise ValueError("latency_samples must be a power of two")
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

    def reset(self):
        """A new connection: whatever was buffered belonged to the old one."""
        self.len = 0

    def watch(self, uint64_t sid, bint caught_up):
        """Decode the messages of subscription `sid` from now on (a new consumer)."""
        self.sid = sid
        self.next_dseq = 1
        self.gap = False
        self.caught_up = caught_up

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

    cdef int _message(self, const char* reply, Py_ssize_t reply_len, const char* hdr,
                      Py_ssize_t hdr_len, const char* payload, Py_ssize_t size) except -1:
        cdef int64_t recv_ns = 0
        cdef uint64_t v
        cdef Py_ssize_t i, j
        cdef Py_ssize_t n
        self.last_activity_ns = now_ns()
        if hdr_len >= STATUS_LEN + 3 and memcmp(hdr, STATUS, STATUS_LEN) == 0 and \
                hdr[STATUS_LEN] != b'\r':
            self.heartbeats += 1   # a status message (idle heartbeat): no data
            return 0
        for i in range(hdr_len - RECV_LEN):
            if hdr[i] == b'F' and memcmp(hdr + i, RECV, RECV_LEN) == 0:
                j = i + RECV_LEN
                while j < hdr_len and hdr[j] != b'\r':
                    j += 1
                if parse_uint(hdr + i + RECV_LEN, j - i - RECV_LEN, &v):
                    recv_ns = <int64_t>v
                break
        if reply_len:
            self._reply(reply, reply_len)
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
                if sid == self.sid:
                    tok = 3 if ntok == (6 if hmsg else 5) else -1   # the reply, if any
                    self._message(p + starts[tok] if tok > 0 else NULL,
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
