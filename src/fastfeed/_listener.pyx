"""The picows listener of a feed connection.

Per data frame, with no Python callback registered, this runs entirely in C: the frame's payload
pointer goes to ``FeedDecoder.feed`` and nothing else happens. Python is entered only for a
registered per-frame callback (once per frame), for a waiting async consumer (once per wait),
for control events (ping, close, connect, disconnect) and for bad frames.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, int64_t, uint64_t
from libc.stdlib cimport realloc, free
from libc.string cimport memcpy
from fastfeed._clock cimport now_ns

from picows.picows cimport WSListener, WSTransport, WSFrame, WSMsgType, WSCloseCode

from fastfeed._decode cimport FeedDecoder
from fastfeed._tap cimport FrameTap, TAP_FRAME

from fastfeed.errors import FastfeedError

cdef Py_ssize_t INITIAL_BUFFER = 64 * 1024
cdef int NO_STATUS = 1005  # a CLOSE frame without a status code (RFC 6455 7.1.5)


cdef int PROTOCOL_ERROR = 1002


cdef inline bint _may_send(int code):
    """A close code an endpoint may put on the wire (RFC 6455 7.4.1: 1000-1003, 1007-1014 and
    3000-4999); any other (0, 1005, 1006, 5000...) in a CLOSE frame is a protocol error."""
    return (1000 <= code <= 1003) or (1007 <= code <= 1014) or (3000 <= code <= 4999)


cdef class FeedListener(WSListener):
    """One connection's listener.

    ``decoder``: the market feed's decoder, or None for feeds whose messages go to
    ``on_message(payload: bytes, text: bool)`` (the portfolio feed's JSON); with a decoder, a set
    ``on_message`` gets each frame the decoder accepted, after it (fastfeed.compat's dicts).
    ``owner`` gets the control events: ``_ws_connected(listener)``,
    ``_frame_failed(listener, exc, size)``, ``_market_info(listener)`` and
    ``_instruments_rejected(listener)`` (with a decoder: new market status, keys refused a row)
    and ``_callback_failed(exc)``. A lost connection needs no call: the owner awaits the transport.
    ``callbacks``: the market feed's FrameCallbacks, called (in C) once per decoded frame that
    applied n > 0 updates, or None.
    ``wake()``: called once, after the next frame that applied updates, then cleared.
    ``resume()``: called once, at the next data message, then cleared (a sleeping busy-poll
    starts spinning again).
    ``tap``: a recording's FrameTap; every data message is copied into it (C, no Python object).
    ``detach()``: from then on, frames are only counted (not recorded, decoded or handed on).
    """

    def __init__(self, FeedDecoder decoder, owner, Py_ssize_t max_message_size=16 * 1024 * 1024):
        if max_message_size < 1:
            raise ValueError("max_message_size must be positive")
        self.decoder = decoder
        self.owner = owner
        self.callbacks = None
        self.on_message = None
        self.wake = None
        self.resume = None
        self.transport = None
        self.max_message_size = max_message_size
        self.frag_type = -1
        self.close_code = 0
        self.close_reason = ""
        self.read_starts = True
        if decoder is not None:
            self.market_info_seen = decoder.market_info_frames
            self.rejected_seen = decoder.rejected_keys

    def __dealloc__(self):
        free(self.buf)

    # -- picows callbacks ---------------------------------------------------------------------

    cpdef on_ws_connected(self, WSTransport transport):
        self.transport = transport
        self.connected_ns = now_ns()
        self.owner._ws_connected(self)

    cpdef on_ws_disconnected(self, WSTransport transport):
        # picows leaves this set when its auto-ping gave up waiting for a PONG.
        self.pong_timeout = transport.auto_ping_expect_pong
        hs = transport.close_handshake
        if hs is None or self.close_code != 0:
            return
        if hs.recv is not None:
            # A CLOSE picows read but did not hand over. It reads one without a status code as
            # 0; RFC 6455 reports that as 1005.
            self.close_code = <int>hs.recv.code or NO_STATUS
            self.close_reason = hs.recv.reason or ""
        elif hs.sent is not None and hs.sent.code == PROTOCOL_ERROR:
            # picows failed the connection itself (a frame against RFC 6455, a CLOSE with a code
            # it refuses): reported as the 1002 it sent, with its reason.
            self.close_code = PROTOCOL_ERROR
            self.close_reason = hs.sent.reason or ""

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef WSMsgType t = frame.msg_type
        cdef int code
        self._frame_arrived(frame)
        if t == WSMsgType.BINARY or t == WSMsgType.TEXT:
            if self.frag_type >= 0:
                # A new message while a fragmented one is unfinished (a protocol error): the
                # unfinished one is abandoned and counted, the new one stands on its own.
                self.unexpected += 1
                self.frag_type = -1
                self.frag_dropping = False
                self.buf_len = 0
            if frame.fin:
                self._deliver(frame.payload_ptr, frame.payload_size, t == WSMsgType.TEXT)
                return
            self.fragments += 1
            self.buf_len = 0
            self.frag_dropping = False
            self.frag_type = <int>t
            self._append(frame.payload_ptr, frame.payload_size)
            return
        if t == WSMsgType.CONTINUATION:
            self.fragments += 1
            if self.frag_type < 0:
                self.unexpected += 1
                return
            self._append(frame.payload_ptr, frame.payload_size)
            if frame.fin:
                t = <WSMsgType>self.frag_type
                self.frag_type = -1
                if self.frag_dropping:
                    self.frag_dropping = False
                    return
                self._deliver(self.buf, self.buf_len, t == WSMsgType.TEXT)
            return
        if t == WSMsgType.PING:
            self.pings_received += 1
            transport.send_pong(frame.get_payload_as_bytes())
            return
        if t == WSMsgType.CLOSE:
            if frame.payload_size < 2:
                # No status code: reported as 1005 (RFC 6455 7.1.5), a code that must never be
                # sent, so the reply is a plain 1000.
                self.close_code = NO_STATUS
                self.close_reason = ""
                transport.send_close(<WSCloseCode>1000)
            else:
                code = <int>frame.get_close_code()
                reason = frame.get_close_reason() or ""
                if _may_send(code):
                    self.close_code, self.close_reason = code, reason
                else:
                    # A code no endpoint may send (0, 1005, 1006...): the connection failed with
                    # a protocol error, reported as the 1002 sent, the reason naming what came.
                    self.close_code = PROTOCOL_ERROR
                    self.close_reason = f"invalid close code {code} received" + \
                        (f": {reason}" if reason else "")
                transport.send_close(<WSCloseCode>self.close_code)
            transport.disconnect()
            return
        if t == WSMsgType.PONG:
            self.pongs_received += 1  # unsolicited, or outside picows's auto-ping window
            return
        self.unexpected += 1

    cpdef send_user_specific_ping(self, WSTransport transport):
        self.pings_sent += 1
        transport.send_ping()

    cpdef is_user_specific_pong(self, WSFrame frame):
        if frame.msg_type == WSMsgType.PONG:
            self._frame_arrived(frame)  # picows hands this frame to no one else
            self.pongs_received += 1
            return True
        return False

    # -- data -----------------------------------------------------------------------------------

    cdef void _frame_arrived(self, WSFrame frame) noexcept:
        # picows delivers the frames of one socket read in one go and marks the last: the next
        # frame starts a new read. (A clock read costs 40-75 ns on a VM, a frame's decode 300.)
        if self.read_starts:
            self.read_ns = now_ns()
        self.read_starts = frame.last_in_buffer

    cdef int _append(self, const char* data, Py_ssize_t size) except -1:
        cdef Py_ssize_t need = self.buf_len + size
        cdef Py_ssize_t cap
        cdef char* grown
        if self.frag_dropping:
            return 0
        if need > self.max_message_size:
            # Too big to keep: drop the whole message, report it once, keep the connection.
            self.frag_dropping = True
            self.oversized += 1
            self.buf_len = 0
            if not self.detached:
                self.owner._frame_failed(self, FastfeedError(
                    f"fragmented message over max_message_size ({self.max_message_size} bytes) "
                    "dropped"), need)
            return 0
        if need > self.buf_cap:
            cap = self.buf_cap if self.buf_cap else INITIAL_BUFFER
            while cap < need:
                cap *= 2
            if cap > self.max_message_size:
                cap = self.max_message_size
            grown = <char*>realloc(self.buf, cap)
            if grown == NULL:
                raise MemoryError()
            self.buf = grown
            self.buf_cap = cap
        if size:
            memcpy(self.buf + self.buf_len, data, size)
        self.buf_len = need
        return 0

    cdef int _deliver(self, const char* data, Py_ssize_t size, bint text) except -1:
        cdef int64_t recv_ns = self.read_ns if self.callbacks is None else now_ns()
        cdef Py_ssize_t n
        cdef FeedDecoder decoder = self.decoder
        self.frames += 1
        self.bytes += size
        self.last_frame_ns = recv_ns
        if self.detached:
            return 0
        if self.resume is not None:
            resume = self.resume
            self.resume = None
            try:
                resume()
            except Exception as exc:
                self.owner._callback_failed(exc)
        if self.tap is not None:
            # Before decoding: a frame the decoder refuses is recorded too, to reproduce the bug.
            self.tap.append(TAP_FRAME, recv_ns, data, size)
        if decoder is None:
            if self.on_message is not None:
                try:
                    self.on_message(PyBytes_FromStringAndSize(data, size), text)
                except Exception as exc:
                    self.owner._callback_failed(exc)
            return 0
        if text:
            self.unexpected += 1
            self.decode_errors += 1
            self.owner._frame_failed(self, FastfeedError("text frame on a binary feed ignored"), size)
            return 0
        try:
            n = decoder.feed(<const uint8_t*>data, size, recv_ns)
        except Exception as exc:
            # The decoder changed nothing; the connection and every other instrument go on.
            self.decode_errors += 1
            self.owner._frame_failed(self, exc, size)
            return 0
        if decoder.market_info_frames != self.market_info_seen:
            self.market_info_seen = decoder.market_info_frames
            self.owner._market_info(self)
        if decoder.rejected_keys != self.rejected_seen:
            self.rejected_seen = decoder.rejected_keys
            self.owner._instruments_rejected(self)
        if n > 0:
            if self.keep_sample:   # asked for now and then: a Python object only then
                self.keep_sample = False
                self.sample = PyBytes_FromStringAndSize(data, size)
            if self.callbacks is not None:
                try:
                    self.callbacks.dispatch(n, recv_ns)
                except Exception as exc:
                    self.owner._callback_failed(exc)
            if self.wake is not None:
                wake = self.wake
                self.wake = None
                try:
                    wake()
                except Exception as exc:
                    self.owner._callback_failed(exc)
        if self.on_message is not None:
            try:
                self.on_message(PyBytes_FromStringAndSize(data, size), False)
            except Exception as exc:
                self.owner._callback_failed(exc)
        return 0

    # -- for the owner ---------------------------------------------------------------------------

    def detach(self):
        """Deliver nothing more (the connection failed to open): frames still read, such as those
        that came with the upgrade, are counted and dropped, and the owner hears of none."""
        self.detached = True
        self.callbacks = None
        self.on_message = self.wake = self.resume = None

    def touch(self):
        """Warm this connection's decoder and callbacks for the next frame, changing nothing
        (busy polling calls it between frames)."""
        if self.decoder is not None:
            self.decoder.touch()
        if self.callbacks is not None:
            self.callbacks.touch()

    # -- for tests and tools --------------------------------------------------------------------

    def feed_frame(self, payload, bint text=False):
        """Deliver one complete message as if it had arrived (no socket involved)."""
        cdef bytes b = payload if type(payload) is bytes else bytes(payload)
        self.read_ns = now_ns()
        self.read_starts = True
        self._deliver(<const char*>b, len(b), text)

    def stats(self):
        return {
            "frames": self.frames, "bytes": self.bytes, "fragments": self.fragments,
            "decode_errors": self.decode_errors, "oversized": self.oversized,
            "unexpected": self.unexpected, "pings_received": self.pings_received,
            "pings_sent": self.pings_sent, "pongs_received": self.pongs_received,
        }
