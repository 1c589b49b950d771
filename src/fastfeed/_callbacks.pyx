"""MarketFeed's per-frame callback path: ``on_update`` and ``on_quote``.

The listener calls ``dispatch(n, recv_ns)`` (a C call) after each frame that applied ``n``
updates. An ``on_update`` callback gets that frame's records as a numpy view made once and
reused (the records are copied into a scratch buffer behind it), an ``on_quote`` callback the
Quote of its row, built from the row index (no key encoding or hashing) and only for rows
somebody listens to. Latency samples go into a preallocated array: nothing here allocates per
frame but those Quotes.
"""

from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memcpy

from fastfeed._clock cimport now_ns
from fastfeed._store cimport Store, UpdateRecord, FF_PREFETCH_WRITE

import numpy as np

from fastfeed._store import RECORD_DTYPE

cdef enum:
    VIEW_RECORDS = 64        # frames up to this many records get a reused view
    LATENCY_SAMPLES = 4096   # per path; a power of two
    PATH_FIRST = 0           # the first callback of a frame, whichever it is
    PATH_UPDATE = 1
    PATH_QUOTE = 2

PATHS = ("first", "on_update", "on_quote")


cdef class FrameCallbacks:
    """The callbacks of one feed, over its store. ``report(fn, where)`` is called from inside
    the ``except`` of a callback that raised (it logs and counts; the feed goes on)."""

    def __cinit__(self, Store store, report):
        self.store = store
        self.report = report
        self.update_fns = ()
        self.quote_fns = {}
        self.row_fns = [None] * store.max_instruments
        self.quoted_row = -1
        self.scratch = np.zeros(VIEW_RECORDS, dtype=RECORD_DTYPE)
        self.scratch_records = <UpdateRecord*><size_t>self.scratch.__array_interface__["data"][0]
        views = []
        for n in range(VIEW_RECORDS + 1):
            view = self.scratch[:n]
            view.flags.writeable = False
            views.append(view)
        self.views = views
        self.samples = np.zeros(3 * LATENCY_SAMPLES, dtype=np.int64)
        self.sample_ns = <int64_t*><size_t>self.samples.__array_interface__["data"][0]

    @property
    def active(self):
        """Whether any callback is registered."""
        return bool(self.update_fns) or bool(self.quote_fns)

    def set_update_fns(self, fns):
        self.update_fns = tuple(fns)

    def set_quote_fns(self, quote_fns):
        """``{key: [fn, ...]}``: rows are resolved at the next frame, and again as keys arrive."""
        self.quote_fns = {key: tuple(fns) for key, fns in quote_fns.items() if fns}
        self.rows_seen = -1

    cdef int _resolve(self) except -1:
        cdef Store store = self.store
        cdef list row_fns = [None] * store.max_instruments
        cdef int32_t row
        cdef Py_ssize_t unresolved = 0
        for key, fns in self.quote_fns.items():
            row = store.row(key)
            if row >= 0:
                row_fns[row] = fns
            else:
                unresolved += 1
        self.row_fns = row_fns
        self.unresolved = unresolved
        self.rows_seen = len(store)
        return 0

    cdef object _view(self, uint64_t start, Py_ssize_t n):
        cdef Store store = self.store
        cdef uint64_t first = start & store.ring_mask
        cdef uint64_t cap = <uint64_t>store.ring_capacity
        cdef uint64_t head_part
        if n > VIEW_RECORDS:
            view = store._records_from(start, n)
            view.flags.writeable = False
            return view
        head_part = cap - first if first + n > cap else n
        memcpy(self.scratch_records, &store.records[first], head_part * sizeof(UpdateRecord))
        if head_part < <uint64_t>n:  # the frame's records wrap around the ring's end
            memcpy(self.scratch_records + head_part, store.records,
                   (n - head_part) * sizeof(UpdateRecord))
        return self.views[n]

    cdef int dispatch(self, Py_ssize_t n, int64_t recv_ns) except -1:
        cdef Store store = self.store
        cdef uint64_t start, i
        cdef int64_t lag
        cdef int32_t row
        cdef bint first = True
        cdef tuple fns
        if n > store.ring_capacity:
            n = store.ring_capacity
        start = store.head - <uint64_t>n
        if self.update_fns:
            records = self._view(start, n)
            lag = now_ns() - recv_ns
            self._sample(PATH_FIRST, lag)
            self._sample(PATH_UPDATE, lag)
            first = False
            for fn in self.update_fns:
                try:
                    fn(records)
                except Exception:
                    self.report(fn, "on_update")
        if not self.quote_fns:
            return 0
        if self.rows_seen < 0 or (self.unresolved and self.rows_seen != len(store)):
            self._resolve()
        for i in range(start, start + <uint64_t>n):
            row = store.records[i & store.ring_mask].row
            entry = self.row_fns[row]
            if entry is None:
                continue
            fns = <tuple>entry
            quote = store.quote_at(row)
            self.quoted_row = row
            lag = now_ns() - recv_ns
            if first:
                self._sample(PATH_FIRST, lag)
                first = False
            self._sample(PATH_QUOTE, lag)
            for fn in fns:
                try:
                    fn(quote)
                except Exception:
                    self.report(fn, "on_quote")
        return 0

    def touch(self):
        """Bring the scratch behind the reused views and the next latency slots into the cache
        (busy polling, between frames); with on_quote listeners, build the last Quote again and
        drop it, so that its code and the allocator are warm too. Nothing changes."""
        cdef char* p = <char*>self.scratch_records
        cdef int path
        if self.quote_fns and 0 <= self.quoted_row < len(self.store):
            self.store.quote_at(self.quoted_row)
        FF_PREFETCH_WRITE(p)
        FF_PREFETCH_WRITE(p + 64)
        FF_PREFETCH_WRITE(p + sizeof(UpdateRecord) - 1)
        for path in range(3):
            FF_PREFETCH_WRITE(&self.sample_ns[path * LATENCY_SAMPLES
                                              + (self.counts[path] & (LATENCY_SAMPLES - 1))])

    cdef inline void _sample(self, int path, int64_t lag) noexcept:
        self.sample_ns[path * LATENCY_SAMPLES + (self.counts[path] & (LATENCY_SAMPLES - 1))] = lag
        self.counts[path] += 1

    def samples_ns(self, str path):
        """A copy of the kept samples (ns) of one path: "first" (the first callback of each
        frame), "on_update" or "on_quote"; at most the last 4096, in no particular order."""
        cdef int p = PATHS.index(path)
        cdef uint64_t kept = min(self.counts[p], <uint64_t>LATENCY_SAMPLES)
        return self.samples[p * LATENCY_SAMPLES:p * LATENCY_SAMPLES + kept].copy()
