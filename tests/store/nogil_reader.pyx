# cython: language_level=3
# A Cython reader of the snapshot without the GIL, as a user's extension would write one: it
# cimports the store's seqlock read from fastfeed/_store.pxd. Built by test_nogil_reader.py.
from libc.stdint cimport uint64_t
from libc.string cimport memcmp

from fastfeed._store cimport Store, QuoteRow, MAX_LEVELS, FLAG_STALE, _read_row


def read_while(Store store, int row, const uint64_t[:] writer_done):
    """Read `row` without the GIL until writer_done[0] is set. Returns (reads, torn, changed
    without a seq bump, seq went back, timeouts, stale seen)."""
    cdef QuoteRow r, prev
    cdef uint64_t reads = 0, torn = 0, silent = 0, backwards = 0, timeouts = 0, stale = 0
    cdef int i
    cdef bint have_prev = False
    with nogil:
        while (<volatile uint64_t*>&writer_done[0])[0] == 0:
            if _read_row(store.rows, row, &r) < 0:
                timeouts += 1
                continue
            reads += 1
            # The writer keeps every price of the row equal to its ltp.
            if r.cp != r.ltp:
                torn += 1
            for i in range(r.n_levels if r.n_levels <= MAX_LEVELS else MAX_LEVELS):
                if r.bid_p[i] != r.ltp or r.ask_p[i] != r.ltp:
                    torn += 1
                    break
            if r.flags & FLAG_STALE:
                stale += 1
            if have_prev:
                if r.seq < prev.seq:
                    backwards += 1
                elif r.seq == prev.seq and memcmp(&r, &prev, sizeof(QuoteRow)) != 0:
                    silent += 1
            prev = r
            have_prev = True
    return reads, torn, silent, backwards, timeouts, stale
