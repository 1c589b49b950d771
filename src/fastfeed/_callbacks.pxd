# MarketFeed's per-frame callbacks (on_update, on_quote). The transport listener calls dispatch()
# with C arguments after each frame that applied updates; nothing is allocated here but the
# Quote objects somebody listens for.

from libc.stdint cimport int32_t, int64_t, uint64_t

from fastfeed._store cimport Store, UpdateRecord


cdef class FrameCallbacks:
    cdef Store store
    cdef object report              # report(fn, where): a callback raised (called in the except)
    cdef tuple update_fns
    cdef dict quote_fns             # key -> tuple of fns
    cdef list row_fns               # row -> tuple of fns, or None
    cdef Py_ssize_t unresolved      # keys of quote_fns without a row yet
    cdef int rows_seen              # store rows when row_fns was built
    cdef int32_t quoted_row         # the row of the last Quote built (touch() builds it again)
    # Frames of up to VIEW_RECORDS records are copied into `scratch` and handed over as one of
    # `views` (scratch[:n], made once): no numpy object is made per frame.
    cdef object scratch
    cdef UpdateRecord* scratch_records
    cdef list views
    # Latency samples (ns), one reservoir per path, most recent LATENCY_SAMPLES kept.
    cdef object samples
    cdef int64_t* sample_ns
    cdef uint64_t counts[3]

    cdef int dispatch(self, Py_ssize_t n, int64_t recv_ns) except -1
    cdef object _view(self, uint64_t start, Py_ssize_t n)
    cdef int _resolve(self) except -1
    cdef inline void _sample(self, int path, int64_t lag) noexcept
