# The store: instrument registry, snapshot rows, the update ring and its readers. It knows nothing
# of protobuf or sockets; the decoder fills rows through this C API. All memory is allocated at
# construction and never grows.

from libc.stdint cimport uint8_t, int32_t, uint32_t, int64_t, uint64_t
from libc.string cimport memcpy

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FF_RELEASE_FENCE() __atomic_thread_fence(__ATOMIC_RELEASE)
    #define FF_ACQUIRE_FENCE() __atomic_thread_fence(__ATOMIC_ACQUIRE)
    #if defined(__x86_64__) || defined(__i386__)
    #define FF_CPU_PAUSE() __builtin_ia32_pause()
    #elif defined(__aarch64__) || defined(__arm__)
    #define FF_CPU_PAUSE() __asm__ __volatile__("yield")
    #else
    #define FF_CPU_PAUSE() __atomic_signal_fence(__ATOMIC_SEQ_CST)
    #endif
    #else  /* MSVC on x86-64, whose stores and loads are ordered: a compiler barrier */
    #include <intrin.h>
    #define FF_RELEASE_FENCE() _ReadWriteBarrier()
    #define FF_ACQUIRE_FENCE() _ReadWriteBarrier()
    #define FF_CPU_PAUSE() _mm_pause()
    #endif
    #if defined(__GNUC__) || defined(__clang__)
    #define FF_PREFETCH_WRITE(p) __builtin_prefetch((p), 1)
    #define FF_PREFETCH_READ(p) __builtin_prefetch((p), 0)
    #else
    #define FF_PREFETCH_WRITE(p) ((void)(p))
    #define FF_PREFETCH_READ(p) ((void)(p))
    #endif
    """
    # The seqlock's ordering: the writer's odd count is visible before the row's new data, the
    # data before the even count; a reader's copy lies between its two reads of the count.
    void FF_RELEASE_FENCE() noexcept nogil
    void FF_ACQUIRE_FENCE() noexcept nogil
    # A spinning reader tells the CPU so (and leaves the core's other hyperthread the pipeline).
    void FF_CPU_PAUSE() noexcept nogil
    void FF_PREFETCH_WRITE(const void* p) noexcept nogil
    void FF_PREFETCH_READ(const void* p) noexcept nogil

# A seqlock reader gives up on a row that stays odd this long: its writer died inside it, or the
# memory was overwritten. A live writer is inside a row for well under a microsecond, or for a
# scheduler time slice when it is preempted there.
cdef enum:
    READ_ROW_TIMEOUT_MS = 1000

cdef enum:
    MAX_LEVELS = 30     # full_d30
    MAX_BARS = 4        # OHLC intervals kept per instrument ("1d", "I1", ...)
    INTERVAL_SIZE = 16  # bytes per interval name, NUL padded; longer names are not kept

# Feed kinds: which branch of Feed.FeedUnion last updated the row.
cdef enum:
    KIND_NONE = 0
    KIND_LTPC = 1
    KIND_MARKET = 2
    KIND_INDEX = 3
    KIND_GREEKS = 4

# Parts of an update, as bits in UpdateRecord.parts and QuoteRow.parts.
cdef enum:
    PART_LTPC = 1
    PART_DEPTH = 2
    PART_GREEKS = 4
    PART_OHLC = 8
    PART_STATS = 16     # atp, vtt, oi, iv, tbq, tsq, iep, rp, ieq, iiq*, casEligible
    PART_SNAPSHOT = 32  # an initial_feed replaced the row

# QuoteRow.flags
cdef enum:
    FLAG_STALE = 1      # not updated since the feed's last gap
    FLAG_LTPC_IEP = 2   # the last LTPC carried iep (a DoubleValue: present, even when NaN)

ctypedef struct Bar:
    char interval[16]
    double open
    double high
    double low
    double close
    int64_t vol
    int64_t ts

ctypedef struct QuoteRow:
    # Seqlock: odd while the row is being written. A reader copies the row and keeps the copy
    # only if seq was even and unchanged across the copy.
    uint64_t seq
    int64_t updates
    int64_t server_ts       # FeedResponse.currentTs of the last update (epoch ms)
    int64_t recv_ns         # receive time of the last update (epoch ns)
    int32_t mode            # RequestMode
    int32_t kind
    uint32_t parts          # parts ever received since the last snapshot
    uint32_t flags
    double ltp
    int64_t ltt
    int64_t ltq
    double cp
    double ltpc_iep         # LTPC.iep; meaningful with FLAG_LTPC_IEP, else NaN
    double atp
    int64_t vtt
    double oi
    double iv
    double tbq
    double tsq
    double iep
    double rp
    int64_t ieq
    int64_t iiq_total
    int64_t iiq_m
    int32_t cas_eligible
    int32_t n_levels
    double delta
    double theta
    double gamma
    double vega
    double rho
    double bid_p[30]
    int64_t bid_q[30]
    double ask_p[30]
    int64_t ask_q[30]
    int32_t n_bars
    int32_t bars_dropped    # bars whose interval did not fit (name too long, or MAX_BARS taken)
    Bar bars[4]

ctypedef struct UpdateRecord:
    uint64_t seq            # 1-based position in the stream of updates
    int32_t row
    uint32_t parts          # what this update carried
    int32_t mode
    int32_t kind
    int64_t recv_ns
    int64_t server_ts
    double ltp
    int64_t ltt
    int64_t ltq
    double cp
    double bid_p
    int64_t bid_q
    double ask_p
    int64_t ask_q
    int64_t vtt
    double oi


cdef class Store:
    cdef readonly int max_instruments
    cdef readonly Py_ssize_t ring_capacity
    cdef QuoteRow* rows
    cdef UpdateRecord* records
    cdef uint64_t ring_mask
    cdef uint64_t head              # updates ever written; the next one goes to head & mask
    cdef int n_rows
    # Registry: open addressing over (hash, row); key bytes live in one arena.
    cdef uint64_t* slot_hash
    cdef int32_t* slot_row
    cdef uint64_t slot_mask
    cdef char* arena
    cdef Py_ssize_t arena_used
    cdef Py_ssize_t arena_size
    cdef Py_ssize_t* key_off
    cdef int32_t* key_len
    cdef list keys                  # row -> str, made once per new instrument
    cdef object _rows_array
    cdef object _ring_array
    # Built over a caller's buffer (e.g. shared memory): every table lies in it, nothing grows.
    cdef object _memory
    cdef bint fixed
    cdef object __weakref__

    cdef inline int32_t find(self, const char* key, Py_ssize_t size, uint64_t h) noexcept nogil:
        cdef uint64_t i = h & self.slot_mask
        cdef int32_t row
        while True:
            row = self.slot_row[i]
            if row < 0:
                return -1
            if (self.slot_hash[i] == h and self.key_len[row] == size
                    and same_bytes(self.arena + self.key_off[row], key, size)):
                return row
            i = (i + 1) & self.slot_mask

    cdef int32_t add(self, const char* key, Py_ssize_t size, uint64_t h) except -2
    cdef inline int rows_free(self) noexcept nogil:
        return self.max_instruments - self.n_rows

    cdef inline UpdateRecord* next_record(self) noexcept nogil:
        # The slot being overwritten: its seq is cleared before its fields change, so that a
        # reader that copied the old record can tell (RingReader.read checks seq after the copy).
        cdef UpdateRecord* rec = &self.records[self.head & self.ring_mask]
        (<volatile uint64_t*>&rec.seq)[0] = 0
        FF_RELEASE_FENCE()
        return rec

    cdef int _allocate(self, Py_ssize_t slots) except -1
    cdef int _over_buffer(self, object buffer, Py_ssize_t slots, bint attach) except -1

    cdef inline void prefetch_record(self, uint64_t ahead) noexcept nogil:
        # The ring is larger than the caches: ask for the slot a few updates ahead, so that
        # writing it does not wait for memory.
        cdef char* p = <char*>&self.records[(self.head + ahead) & self.ring_mask]
        FF_PREFETCH_WRITE(p)
        FF_PREFETCH_WRITE(p + sizeof(UpdateRecord) - 1)

    cdef inline void prefetch_row(self, int32_t row) noexcept nogil:
        # Read (not write) prefetches: the lines an update of `row` reads and writes (its
        # header, first depth levels, bars and key), cached without changing them, nor taking
        # them from a reader on another core before the writer has to.
        cdef QuoteRow* r
        cdef char* p
        cdef char* end
        if row < 0 or row >= self.n_rows:
            return
        r = &self.rows[row]
        p = <char*>r
        end = <char*>&r.bid_p[0]
        while p < end:
            FF_PREFETCH_READ(p)
            p += 64
        # The first five levels of each side's arrays (a `full` feed's depth).
        FF_PREFETCH_READ(&r.bid_p[0])
        FF_PREFETCH_READ(&r.bid_p[4])
        FF_PREFETCH_READ(&r.bid_q[0])
        FF_PREFETCH_READ(&r.bid_q[4])
        FF_PREFETCH_READ(&r.ask_p[0])
        FF_PREFETCH_READ(&r.ask_p[4])
        FF_PREFETCH_READ(&r.ask_q[0])
        FF_PREFETCH_READ(&r.ask_q[4])
        p = <char*>&r.n_bars
        end = <char*>&r.bars[MAX_BARS]
        while p < end:
            FF_PREFETCH_READ(p)
            p += 64
        FF_PREFETCH_READ(self.arena + self.key_off[row])

    cdef inline void publish_record(self, UpdateRecord* rec) noexcept nogil:
        # seq last, after the record's fields; then head, which readers read first.
        FF_RELEASE_FENCE()
        (<volatile uint64_t*>&rec.seq)[0] = self.head + 1
        FF_RELEASE_FENCE()
        (<volatile uint64_t*>&self.head)[0] = self.head + 1

    cdef void mark_all_stale(self) noexcept nogil
    cpdef object quote_at(self, int32_t row)
    cdef object _records_from(self, uint64_t position, uint64_t n)


# Seqlock read of one snapshot row into `out`: 0, or -1 when the row stayed mid-write past
# READ_ROW_TIMEOUT_MS (the caller raises SeqlockTimeoutError). Usable without the GIL, from a
# Cython reader thread: `from fastfeed._store cimport Store, QuoteRow, _read_row`.
cdef int _read_row(QuoteRow* rows, int32_t row, QuoteRow* out) noexcept nogil


cdef inline uint64_t hash_key(const char* key, Py_ssize_t size) noexcept nogil:
    # Keys are short ASCII strings; a word-at-a-time multiply-xorshift mix is plenty.
    cdef uint64_t h = 0x9E3779B97F4A7C15ULL ^ <uint64_t>size
    cdef uint64_t w
    while size >= 8:
        memcpy(&w, key, 8)
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL
        h ^= h >> 31
        key += 8
        size -= 8
    w = 0
    while size > 0:
        size -= 1
        w = (w << 8) | <uint8_t>key[size]
    h = (h ^ w) * 0x94D049BB133111EBULL
    h ^= h >> 29
    return h


cdef inline bint same_bytes(const char* a, const char* b, Py_ssize_t size) noexcept nogil:
    # Instrument keys are 10-30 bytes: word compares beat a call to memcmp. The tail is one
    # more word, overlapping the last one compared, rather than a loop over its bytes.
    cdef uint64_t x, y
    cdef uint32_t u, v
    if size >= 8:
        while size > 8:
            memcpy(&x, a, 8)
            memcpy(&y, b, 8)
            if x != y:
                return False
            a += 8
            b += 8
            size -= 8
        memcpy(&x, a + size - 8, 8)
        memcpy(&y, b + size - 8, 8)
        return x == y
    if size >= 4:
        memcpy(&u, a, 4)
        memcpy(&v, b, 4)
        if u != v:
            return False
        memcpy(&u, a + size - 4, 4)
        memcpy(&v, b + size - 4, 4)
        return u == v
    while size > 0:
        if a[0] != b[0]:
            return False
        a += 1
        b += 1
        size -= 1
    return True
