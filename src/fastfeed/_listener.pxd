# The transport listener: picows hands it each WebSocket frame; it passes the payload pointer to
# the decoder's cdef entry (market feed) or the complete message to a Python hook (JSON feeds).

from libc.stdint cimport int64_t, uint64_t
from picows.picows cimport WSListener, WSTransport, WSFrame

from fastfeed._callbacks cimport FrameCallbacks
from fastfeed._decode cimport FeedDecoder
from fastfeed._tap cimport FrameTap


cdef class FeedListener(WSListener):
    cdef readonly FeedDecoder decoder
    cdef object owner
    cdef public FrameCallbacks callbacks
    cdef public object on_message
    cdef public object wake
    cdef public object resume
    cdef public bint keep_sample   # copy the next decoded frame into `sample` (busy polling's)
    cdef public object sample      # bytes of a recent frame that decoded, or None
    cdef public FrameTap tap       # recording: each message is copied here first (None: off)
    cdef readonly WSTransport transport

    # Continuation frames are reassembled here; the buffer is kept between messages.
    cdef char* buf
    cdef Py_ssize_t buf_len
    cdef Py_ssize_t buf_cap
    cdef readonly Py_ssize_t max_message_size
    cdef int frag_type
    cdef bint frag_dropping

    cdef readonly uint64_t frames
    cdef readonly uint64_t bytes
    cdef readonly uint64_t fragments
    cdef readonly uint64_t decode_errors
    cdef readonly uint64_t oversized
    cdef readonly uint64_t unexpected
    cdef readonly uint64_t pings_received
    cdef readonly uint64_t pings_sent
    cdef readonly uint64_t pongs_received
    cdef readonly uint64_t market_info_seen
    cdef readonly uint64_t rejected_seen   # decoder.rejected_keys already reported to the owner
    cdef readonly int64_t connected_ns
    cdef readonly int64_t last_frame_ns
    # The clock is read once per socket read (picows marks a read's last frame): its frames got
    # there together. A registered callback still gets each frame's own time (its latency).
    cdef int64_t read_ns
    cdef bint read_starts
    cdef readonly bint pong_timeout
    cdef readonly bint detached
    cdef readonly int close_code
    cdef readonly str close_reason

    cdef void _frame_arrived(self, WSFrame frame) noexcept
    cdef int _deliver(self, const char* data, Py_ssize_t size, bint text) except -1
    cdef int _append(self, const char* data, Py_ssize_t size) except -1
