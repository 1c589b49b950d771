# The recording tap: the listener copies each message into a C chunk here; a writer thread takes
# whole chunks and writes them. See _tap.pyx for the design.

from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t
from cpython.pythread cimport PyThread_type_lock

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    static inline int ff_xchg(volatile int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
    static inline int ff_cas(volatile int* p, int expected, int desired) {
        return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
    static inline int ff_load(volatile int* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
    static inline void ff_store(volatile int* p, int v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
    static inline void ff_store_release(volatile int* p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline int64_t ff_load64(volatile int64_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void ff_store64(volatile int64_t* p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    #else  /* MSVC, x86-64: interlocked operations are full barriers, aligned loads are atomic */
    #include <intrin.h>
    static inline int ff_xchg(volatile int* p, int v) { return (int)_InterlockedExchange((volatile long*)p, v); }
    static inline int ff_cas(volatile int* p, int expected, int desired) {
        return _InterlockedCompareExchange((volatile long*)p, desired, expected) == expected;
    }
    static inline int ff_load(volatile int* p) { int v = *p; _ReadWriteBarrier(); return v; }
    static inline void ff_store(volatile int* p, int v) { _InterlockedExchange((volatile long*)p, v); }
    static inline void ff_store_release(volatile int* p, int v) { _ReadWriteBarrier(); *p = v; }
    static inline int64_t ff_load64(volatile int64_t* p) { int64_t v = *p; _ReadWriteBarrier(); return v; }
    static inline void ff_store64(volatile int64_t* p, int64_t v) { _ReadWriteBarrier(); *p = v; }
    #endif
    """
    int ff_xchg(int* p, int v) noexcept nogil
    bint ff_cas(int* p, int expected, int desired) noexcept nogil
    int ff_load(int* p) noexcept nogil
    void ff_store(int* p, int v) noexcept nogil
    void ff_store_release(int* p, int v) noexcept nogil
    int64_t ff_load64(int64_t* p) noexcept nogil
    void ff_store64(int64_t* p, int64_t v) noexcept nogil

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
    uint64_t seq          # the order chunks were started in (set by the first message put in)

# A one-producer, one-consumer queue of chunk ids: head is the consumer's, tail the producer's.
cdef struct IdQueue:
    int* ids
    int64_t head
    int64_t tail


cdef class FrameTap:
    cdef Chunk* chunks               # max_chunks slots; the first n_chunks are allocated
    cdef Py_ssize_t n_chunks
    cdef Py_ssize_t max_chunks
    cdef IdQueue full                # producer -> writer: chunks to write
    cdef IdQueue empty               # writer -> producer: written chunks to fill again
    cdef int active                  # the chunk being filled, -1 for none, BUSY while appending
    cdef int held                    # the writer's: a chunk taken early, written in its turn
    cdef uint64_t started            # chunks started so far: the next one's seq
    cdef int closed_flag
    cdef int writer_waiting
    cdef PyThread_type_lock wakeup   # a semaphore the writer sleeps on
    cdef readonly Py_ssize_t chunk_bytes
    cdef readonly Py_ssize_t max_bytes
    cdef readonly Py_ssize_t allocated_bytes
    cdef readonly uint64_t records
    cdef readonly uint64_t bytes
    cdef readonly uint64_t dropped
    cdef readonly uint64_t dropped_bytes
    cdef uint64_t window_dropped     # drops not yet marked by a gap record
    cdef int64_t window_first_ns

    cdef int append(self, int8_t kind, int64_t recv_ns, const char* data, Py_ssize_t size) noexcept nogil
    cdef int _new_chunk(self, Py_ssize_t need) noexcept nogil
    cdef int _fit(self, int cid, Py_ssize_t size) noexcept nogil
    cdef int _fresh_chunk(self, Py_ssize_t need) noexcept nogil
    cdef void _push_full(self, int cid) noexcept nogil
    cdef int _steal_active(self) noexcept nogil
    cdef int take_chunk(self, bint flush) noexcept nogil
    cdef void give_back_chunk(self, int cid) noexcept nogil
    cdef void wait_chunks(self, int64_t timeout_ns) noexcept nogil
    cdef void _put(self, Chunk* c, int8_t kind, int64_t recv_ns, const char* data, Py_ssize_t size) noexcept nogil
