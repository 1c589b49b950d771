# The recording tap: the listener copies each message into a C chunk here; a writer thread takes
# whole chunks and writes them. See _tap.pyx for the design.

from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t
from cpython.pythread cimport PyThread_type_lock

# Record kinds, the codes of the capture file's `kind` column.
cdef enum:
    TAP_FRAME = 0
    TAP_REQUEST = 1
    TAP_GAP = 2

cdef struct Chunk:
    char* data
    Py_ssize_t data_len
    Py_ssize_t data_cap
    int64_t* recv_ns
    int8_t* kind
    int32_t* offsets      # n + 1 entries; offsets[0] == 0
    Py_ssize_t n
    Py_ssize_t cap


cdef class FrameTap:
    cdef PyThread_type_lock lock     # guards everything below; held for a memcpy at most
    cdef PyThread_type_lock wakeup   # a semaphore the writer sleeps on
    cdef bint writer_waiting
    cdef Chunk* chunks
    cdef Py_ssize_t n_chunks
    cdef Py_ssize_t max_chunks
    cdef int* free_ids               # stack of empty chunks
    cdef Py_ssize_t n_free
    cdef int* full_ids               # FIFO of chunks waiting for the writer
    cdef Py_ssize_t full_head
    cdef Py_ssize_t n_full
    cdef int active                  # the chunk being filled, or -1
    cdef readonly Py_ssize_t chunk_bytes
    cdef readonly Py_ssize_t max_bytes
    cdef readonly Py_ssize_t allocated_bytes
    cdef readonly bint closed
    cdef readonly uint64_t records
    cdef readonly uint64_t bytes
    cdef readonly uint64_t dropped
    cdef readonly uint64_t dropped_bytes
    cdef uint64_t window_dropped       # drops since the writer last asked
    cdef int64_t window_first_ns

    cdef int append(self, int8_t kind, int64_t recv_ns, const char* data, Py_ssize_t size) noexcept nogil
    cdef int _new_chunk(self, Py_ssize_t need) noexcept nogil
    cdef int _fit(self, int cid, Py_ssize_t size) noexcept nogil
    cdef void _push_full(self, int cid) noexcept nogil
    cdef void _put(self, Chunk* c, int8_t kind, int64_t recv_ns, const char* data, Py_ssize_t size) noexcept nogil
