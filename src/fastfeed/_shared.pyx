"""The store in a shared-memory segment: a header, then the store's tables, then the market status.

One process writes (the hub's ``SharedDecoder``); any number of processes read it through
``SegmentView``, over a read-only mapping. The writer publishes the ring's head and the row count
after each frame, behind a release fence, so a reader that loads them (acquire) sees every record
and key they cover; rows are read through their seqlocks as in one process.
"""

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
from libc.stdint cimport uint8_t, int32_t, uint32_t, int64_t, uint64_t
from libc.string cimport memcpy, memset

from fastfeed._clock cimport now_ns
from fastfeed._decode cimport FeedDecoder
from fastfeed._store cimport *

import json

from fastfeed._store import Store as _Store
from fastfeed.errors import SegmentLayoutError

cdef extern from *:
    """
    #include <stdint.h>
    /* Raise *p to v, never lower it: readers on several threads sync one local store. */
    static inline void ff_raise_u64(uint64_t* p, uint64_t v) {
        uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);
        while (cur < v && !__atomic_compare_exchange_n(p, &cur, v, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {}
    }
    static inline void ff_raise_int(int* p, int v) {
        int cur = __atomic_load_n(p, __ATOMIC_RELAXED);
        while (cur < v && !__atomic_compare_exchange_n(p, &cur, v, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {}
    }
    """
    void ff_raise_u64(uint64_t* p, uint64_t v) noexcept nogil
    void ff_raise_int(int* p, int v) noexcept nogil

MAGIC = 0x3130444546545346    # b"FSTFED01" read as a little-endian word
LAYOUT_VERSION = 1
HEADER_SIZE = 4096            # the store starts on the next page
STATUS_CAPACITY = 1 << 16     # market status, JSON

STATE_OPEN = 1
STATE_CLOSED = 2

ctypedef struct Header:
    # Written once, before the segment is visible under its name.
    uint64_t magic
    uint32_t layout_version
    uint32_t header_size
    uint32_t row_size
    uint32_t record_size
    int32_t max_instruments
    int32_t _pad0
    int64_t ring_capacity
    int64_t store_size
    int64_t status_offset
    int64_t writer_pid
    uint64_t generation
    int64_t created_ns
    uint8_t _line0[40]
    # Published by the writer (after each frame, or as the hub's state changes).
    uint64_t state
    uint64_t head
    int64_t n_rows
    uint64_t frames
    uint64_t bytes
    uint64_t updates
    uint64_t errors
    uint64_t initial_frames
    uint64_t live_frames
    uint64_t market_info_frames
    uint64_t connected
    uint64_t reconnects
    uint64_t gaps
    uint64_t status_seq       # odd while the status is being written
    uint64_t status_len


cdef inline uint64_t _load(uint64_t* p) noexcept nogil:
    return (<volatile uint64_t*>p)[0]


cdef inline void _store_u64(uint64_t* p, uint64_t v) noexcept nogil:
    (<volatile uint64_t*>p)[0] = v


def segment_size(int max_instruments, Py_ssize_t ring_capacity):
    """Bytes of a segment holding a store of this size."""
    return HEADER_SIZE + _Store.buffer_size(max_instruments, ring_capacity) + STATUS_CAPACITY


cdef Header* _header(Py_buffer* view) except NULL:
    if view.len < HEADER_SIZE:
        raise SegmentLayoutError(f"segment of {view.len} bytes is too small for a header")
    return <Header*>view.buf


cdef class SharedDecoder(FeedDecoder):
    """A FeedDecoder whose store lies in a shared segment; it publishes after every frame.

    Build it with :func:`open_writer`.
    """
    cdef Header* hdr
    cdef Py_buffer _view            # of the segment: keeps the mapping alive
    cdef bint _has_view
    cdef uint64_t _status_seen

    def __dealloc__(self):
        if self._has_view:
            PyBuffer_Release(&self._view)

    cdef Py_ssize_t feed(self, const uint8_t* data, Py_ssize_t size, int64_t recv_ns) except -1:
        cdef Py_ssize_t n
        try:
            n = FeedDecoder.feed(self, data, size, recv_ns)
        finally:
            self._publish()
        if self.market_info_frames != self._status_seen:
            self._status_seen = self.market_info_frames
            self.publish_status()
        return n

    cdef void _publish(self) noexcept nogil:
        cdef Header* h = self.hdr
        h.n_rows = self.store.n_rows
        h.frames = self.frames
        h.bytes = self.bytes
        h.updates = self.updates
        h.errors = self.errors
        h.initial_frames = self.initial_frames
        h.live_frames = self.live_frames
        h.market_info_frames = self.market_info_frames
        FF_RELEASE_FENCE()  # the frame's records, rows and keys before the head that covers them
        _store_u64(&h.head, self.store.head)

    def publish_status(self):
        """Write the decoder's market status into the segment (after each market_info frame)."""
        cdef Header* h = self.hdr
        cdef bytes body = json.dumps(self.market_status, separators=(",", ":")).encode()
        if len(body) > STATUS_CAPACITY:
            body = b"{}"  # more segments than Upstox has; readers see none rather than half
        _store_u64(&h.status_seq, h.status_seq + 1)
        FF_RELEASE_FENCE()
        memcpy(<char*>h + h.status_offset, <const char*>body, len(body))
        h.status_len = len(body)
        FF_RELEASE_FENCE()
        _store_u64(&h.status_seq, h.status_seq + 1)

    def set_connection(self, bint connected, uint64_t reconnects, uint64_t gaps):
        """The hub's connection state, for readers' ``stats()``."""
        self.hdr.reconnects = reconnects
        self.hdr.gaps = gaps
        _store_u64(&self.hdr.connected, connected)

    def close(self):
        """Mark the segment closed: every reader's next check raises HubGoneError."""
        FF_RELEASE_FENCE()
        _store_u64(&self.hdr.state, STATE_CLOSED)


def open_writer(segment, int max_instruments, Py_ssize_t ring_capacity, uint64_t generation,
                int64_t pid):
    """Lay out a fresh segment (a writable buffer of ``segment_size`` bytes, all zero) and
    return the decoder that writes it. The segment is open to readers on return."""
    cdef Py_buffer view
    cdef Header* h
    cdef Py_ssize_t store_size = _Store.buffer_size(max_instruments, ring_capacity)
    PyObject_GetBuffer(segment, &view, PyBUF_WRITABLE)
    try:
        if view.len < segment_size(max_instruments, ring_capacity):
            raise ValueError("segment smaller than segment_size()")
        h = <Header*>view.buf
        memset(h, 0, HEADER_SIZE)
        mem = memoryview(segment)
        store = _Store(max_instruments, ring_capacity,
                       buffer=mem[HEADER_SIZE:HEADER_SIZE + store_size])
        decoder = SharedDecoder(max_instruments, ring_capacity, store)
    except BaseException:
        PyBuffer_Release(&view)
        raise
    decoder._view = view
    decoder._has_view = True
    decoder.hdr = h
    h.layout_version = LAYOUT_VERSION
    h.header_size = HEADER_SIZE
    h.row_size = sizeof(QuoteRow)
    h.record_size = sizeof(UpdateRecord)
    h.max_instruments = max_instruments
    h.ring_capacity = ring_capacity
    h.store_size = store_size
    h.status_offset = HEADER_SIZE + store_size
    h.writer_pid = pid
    h.generation = generation
    h.created_ns = now_ns()
    decoder.publish_status()
    FF_RELEASE_FENCE()
    _store_u64(&h.state, STATE_OPEN)
    _store_u64(&h.magic, MAGIC)  # last: a reader trusts nothing before it
    return decoder


def read_identity(segment):
    """(magic ok, layout version, writer pid, generation, state) of a segment's header, without
    trusting the rest: what a hub needs to tell a live segment from a stale one."""
    cdef Py_buffer view
    cdef Header* h
    PyObject_GetBuffer(segment, &view, PyBUF_SIMPLE)
    try:
        if view.len < HEADER_SIZE:
            return (False, 0, 0, 0, 0)
        h = <Header*>view.buf
        return (_load(&h.magic) == MAGIC, h.layout_version, h.writer_pid, h.generation,
                _load(&h.state))
    finally:
        PyBuffer_Release(&view)


cdef class SegmentView:
    """A reader's view of a segment: its header and a Store attached over its tables.

    It never writes the segment (map it read-only). ``sync()`` brings the local store's head,
    row count and keys up to what the writer has published.
    """
    cdef Header* hdr
    cdef Py_buffer _view
    cdef bint _has_view
    cdef readonly Store store
    cdef uint64_t _status_seq
    cdef object _status
    cdef int64_t _probed_ns
    cdef readonly int64_t probe_ns

    def __cinit__(self, segment, int64_t probe_ns=50_000_000):
        cdef Header* h
        PyObject_GetBuffer(segment, &self._view, PyBUF_SIMPLE)
        self._has_view = True
        h = _header(&self._view)
        if _load(&h.magic) != MAGIC:
            raise SegmentLayoutError("not a fastfeed segment (bad magic), or not yet laid out")
        FF_ACQUIRE_FENCE()
        if h.layout_version != LAYOUT_VERSION:
            raise SegmentLayoutError(f"segment layout version {h.layout_version}; this fastfeed "
                                     f"reads version {LAYOUT_VERSION}")
        if (h.header_size != HEADER_SIZE or h.row_size != sizeof(QuoteRow)
                or h.record_size != sizeof(UpdateRecord)):
            raise SegmentLayoutError("segment written by a fastfeed with other row sizes")
        if h.store_size != _Store.buffer_size(h.max_instruments, h.ring_capacity) or \
                self._view.len < h.status_offset + STATUS_CAPACITY:
            raise SegmentLayoutError("segment smaller than its header says")
        self.hdr = h
        mem = memoryview(segment)
        self.store = _Store(h.max_instruments, h.ring_capacity,
                            buffer=mem[HEADER_SIZE:HEADER_SIZE + h.store_size], attach=True)
        self._status_seq = 0
        self._status = {}
        self.probe_ns = probe_ns
        self.sync()

    def __dealloc__(self):
        if self._has_view:
            PyBuffer_Release(&self._view)

    cpdef sync(self):
        """Take in what the writer has published: head, row count, new keys."""
        cdef Header* h = self.hdr
        cdef Store s = self.store
        cdef uint64_t head = _load(&h.head)
        cdef int n, row
        cdef Py_ssize_t off, size
        FF_ACQUIRE_FENCE()
        n = <int>_load(<uint64_t*>&h.n_rows)
        if n > s.max_instruments:
            n = s.max_instruments
        # No Python code runs in this loop, so another thread cannot interleave its appends.
        for row in range(len(s.keys), n):
            off, size = s.key_off[row], s.key_len[row]
            if off < 0 or size < 0 or off + size > s.arena_size:
                off = size = 0  # never read outside the arena, whatever the segment says
            s.keys.append(s.arena[off:off + size].decode("utf-8", "replace"))
        ff_raise_int(&s.n_rows, n)
        ff_raise_u64(&s.head, head)

    cpdef bint due(self):
        """True when the writer has marked the segment closed, or when `probe_ns` have passed
        since the last True: time to look at the writer's pid and the segment's name."""
        cdef int64_t t
        if _load(&self.hdr.state) == STATE_CLOSED:
            return True
        t = now_ns()
        if t - self._probed_ns >= self.probe_ns:
            self._probed_ns = t
            return True
        return False

    @property
    def head(self):
        """Updates the writer has published (the seq of the newest)."""
        return _load(&self.hdr.head)

    @property
    def state(self):
        return _load(&self.hdr.state)

    @property
    def generation(self):
        return self.hdr.generation

    @property
    def writer_pid(self):
        return self.hdr.writer_pid

    @property
    def created_ns(self):
        return self.hdr.created_ns

    @property
    def connected(self):
        return bool(_load(&self.hdr.connected))

    def counters(self):
        cdef Header* h = self.hdr
        return {"frames": h.frames, "bytes": h.bytes, "updates": h.updates,
                "decode_errors": h.errors, "initial_feed": h.initial_frames,
                "live_feed": h.live_frames, "market_info": h.market_info_frames,
                "instruments": h.n_rows, "reconnects": h.reconnects, "gaps": h.gaps,
                "connected": bool(h.connected)}

    def market_status(self):
        """The market status dict the writer last published (parsed once per change)."""
        cdef Header* h = self.hdr
        cdef uint64_t before
        cdef Py_ssize_t n
        cdef int tries
        for tries in range(1000):
            before = _load(&h.status_seq)
            if before == self._status_seq:
                return self._status
            if before & 1:
                continue
            FF_ACQUIRE_FENCE()
            n = h.status_len
            if n > STATUS_CAPACITY:
                continue
            body = (<char*>h + h.status_offset)[:n]
            FF_ACQUIRE_FENCE()
            if _load(&h.status_seq) == before:
                self._status = json.loads(body) if body else {}
                self._status_seq = before
                return self._status
        return self._status  # the writer is stuck mid-write (it died): the last good one
