# The decoder: a frame is walked whole into the scratch area (_parse.pxd), then committed to the
# store. A frame that does not parse whole changes nothing.
# The transport listener cimports FeedDecoder and calls feed() with the frame's bytes.

from libc.stdint cimport uint8_t, int32_t, uint32_t, int64_t, uint64_t

from fastfeed._store cimport Store
from fastfeed._parse cimport Scratch, SFeed

cdef class FeedDecoder:
    cdef readonly Store store
    cdef Scratch scratch
    cdef int32_t* last_entry     # row -> index of its last entry in this frame
    cdef int32_t* predicted      # entry position -> the row found there in the last frame
    cdef Py_ssize_t predicted_n  # ... for the last frame's first predicted_n entries
    cdef readonly uint64_t frames
    cdef readonly uint64_t bytes
    cdef readonly uint64_t updates
    cdef readonly uint64_t errors
    cdef readonly uint64_t initial_frames
    cdef readonly uint64_t live_frames
    cdef readonly uint64_t market_info_frames
    cdef readonly uint64_t other_frames
    cdef readonly uint64_t rejected_keys
    cdef readonly uint64_t rejected_updates
    cdef set _rejected              # keys refused a row, so that each is reported once
    cdef list _new_rejected         # ... and those not yet taken by take_rejected()
    cdef readonly dict market_status
    cdef readonly dict cas_market_status
    cdef readonly dict pre_open_status

    cdef Py_ssize_t feed(self, const uint8_t* data, Py_ssize_t size, int64_t recv_ns) except -1
    cdef int _register(self) except -1
    cdef int _reject(self, SFeed* f) except -1
    cdef int _commit_market_info(self) except -1
