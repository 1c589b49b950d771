"""The bridge's outbox: NATS ``HPUB`` commands for each decoded frame, in one bounded C buffer.

Called once per frame right after the decoder applied it, while the frame's bytes are still
where the decoder read them. For every map entry the decoder applied it writes, with no Python
object per entry:

    HPUB <prefix>.<token>.<parts> <header bytes> <total bytes>\\r\\n
    NATS/1.0\\r\\nFastfeed-Recv-Ns: <hub receive time, epoch ns>\\r\\n\\r\\n
    <FeedResponse: type, currentTs, feeds = the entry's bytes as Upstox sent them>\\r\\n

A full outbox drops the frame's remaining messages and counts them; it never grows.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, int32_t, uint32_t, int64_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

from fastfeed._decode cimport FeedDecoder
from fastfeed._parse cimport Scratch, SFeed
from fastfeed._store cimport Store, UpdateRecord

from fastfeed.nats.subjects import check_prefix, parts_token, status_subject, token_of

RECV_HEADER = "Fastfeed-Recv-Ns"
cdef bytes HEADER_START = b"NATS/1.0\r\nFastfeed-Recv-Ns: "
cdef bytes HEADER_END = b"\r\n\r\n"
# HPUB line, header and FeedResponse framing around the subject and the entry's bytes.
cdef Py_ssize_t OVERHEAD = 160


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
    """Bounded buffer of ready HPUB commands; see the module docstring."""

    cdef char* buf
    cdef readonly Py_ssize_t capacity
    cdef Py_ssize_t used
    cdef bytes prefix
    cdef list subjects          # row -> b"<prefix>.<token>.", filled as rows appear
    cdef list part_tokens       # parts bit set -> b"<parts>"
    cdef bytes status
    cdef readonly uint64_t messages   # queued since start
    cdef readonly uint64_t dropped    # refused: the outbox was full
    cdef readonly uint64_t unmatched  # frames whose entries could not be matched to the ring
    cdef readonly uint64_t taken_bytes

    def __cinit__(self, str prefix="upstox", Py_ssize_t capacity=8 << 20):
        if capacity < 4096:
            raise ValueError("capacity must be at least 4096 bytes")
        self.buf = <char*>malloc(capacity)
        if self.buf == NULL:
            raise MemoryError()
        self.capacity = capacity
        self.prefix = (check_prefix(prefix) + ".").encode()
        self.subjects = []
        self.part_tokens = [parts_token(p).encode() for p in range(64)]
        self.status = status_subject(prefix).encode()

    def __dealloc__(self):
        free(self.buf)

    @property
    def pending(self):
        """Bytes queued and not yet taken."""
        return self.used

    cdef int _learn_rows(self, Store store) except -1:
        cdef list keys = store.keys
        while len(self.subjects) < len(keys):
            self.subjects.append(self.prefix + token_of(keys[len(self.subjects)]).encode() + b".")
        return 0

    cdef bint _put(self, bytes subject, const char* head, Py_ssize_t head_len,
                   const uint8_t* body, Py_ssize_t body_len, int32_t type_, int64_t ts,
                   int64_t recv_ns, uint8_t field):
        """One HPUB whose payload is FeedResponse(type, currentTs, <field> = body)."""
        cdef Py_ssize_t subject_len = PyBytes_GET_SIZE(subject)
        cdef Py_ssize_t need = subject_len + head_len + body_len + OVERHEAD
        cdef char hdr[64]
        cdef Py_ssize_t hlen, plen
        cdef char* p
        if self.used + need > self.capacity:
            self.dropped += 1
            return False
        # Header block.
        memcpy(hdr, PyBytes_AS_STRING(HEADER_START), 28)
        hlen = 28 + put_decimal(hdr + 28, <uint64_t>recv_ns if recv_ns > 0 else 0)
        memcpy(hdr + hlen, PyBytes_AS_STRING(HEADER_END), 4)
        hlen += 4
        # Payload size: optional type, optional currentTs, the field's tag, length and bytes.
        plen = 0
        if type_ != 0:
            plen += 1 + varint_size(<uint64_t><int64_t>type_)
        if ts != 0:
            plen += 1 + varint_size(<uint64_t>ts)
        plen += 1 + varint_size(<uint64_t>body_len) + body_len
        p = self.buf + self.used
        memcpy(p, b"HPUB ", 5)
        p += 5
        memcpy(p, PyBytes_AS_STRING(subject), subject_len)
        p += subject_len
        if head_len:
            memcpy(p, head, head_len)
            p += head_len
        p[0] = b' '
        p += 1
        p += put_decimal(p, hlen)
        p[0] = b' '
        p += 1
        p += put_decimal(p, hlen + plen)
        p[0] = b'\r'
        p[1] = b'\n'
        p += 2
        memcpy(p, hdr, hlen)
        p += hlen
        if type_ != 0:
            p[0] = 0x08
            p += 1 + put_varint(p + 1, <uint64_t><int64_t>type_)
        if ts != 0:
            p[0] = 0x18
            p += 1 + put_varint(p + 1, <uint64_t>ts)
        p[0] = <char>field
        p += 1 + put_varint(p + 1, <uint64_t>body_len)
        memcpy(p, body, body_len)
        p += body_len
        p[0] = b'\r'
        p[1] = b'\n'
        p += 2
        self.used = p - self.buf
        self.messages += 1
        return True

    cpdef Py_ssize_t capture(self, FeedDecoder decoder, Py_ssize_t applied):
        """Queue the frame the decoder applied last (`applied` updates): one message per applied
        entry. Returns the messages queued."""
        cdef Scratch* s = &decoder.scratch
        cdef Store store = decoder.store
        cdef SFeed* f
        cdef UpdateRecord* rec
        cdef bytes subject, parts
        cdef Py_ssize_t i, j = 0, queued = 0, n = 0
        cdef uint64_t first
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
            subject = <bytes>self.subjects[f.row]
            parts = <bytes>self.part_tokens[rec.parts & 63]
            if self._put(subject, PyBytes_AS_STRING(parts), PyBytes_GET_SIZE(parts),
                         s.buf + f.entry_off, f.entry_len, s.type_, s.current_ts,
                         rec.recv_ns, 0x12):
                queued += 1
        return queued

    cpdef bint capture_status(self, FeedDecoder decoder):
        """Queue the MarketInfo of the frame the decoder read last, if it had one."""
        cdef Scratch* s = &decoder.scratch
        if not s.has_market_info:
            return False
        return self._put(self.status, NULL, 0, s.buf + s.info_off, s.info_len, s.type_,
                         s.current_ts, 0, 0x22)

    def queue_status(self, bytes market_info, int64_t current_ts):
        """Queue a MarketInfo message's bytes on the status subject, as a market_info frame."""
        return self._put(self.status, NULL, 0, <const uint8_t*>PyBytes_AS_STRING(market_info),
                         PyBytes_GET_SIZE(market_info), 2, current_ts, 0, 0x22)

    def take(self):
        """Everything queued, as one bytes object (None if nothing is), and an empty outbox."""
        if self.used == 0:
            return None
        out = PyBytes_FromStringAndSize(self.buf, self.used)
        self.taken_bytes += self.used
        self.used = 0
        return out

