"""Replay: a capture batch's Arrow buffers straight into a decoder, one C loop per batch.

The caller hands over the buffers of a record batch (receive times, record kinds, binary offsets
and payload bytes); each frame goes to ``FeedDecoder.feed`` with its recorded receive time, and no
Python object is made per frame unless an ``on_update`` callback wants the frame's records.
"""

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from libc.stdint cimport uint8_t, int8_t, int32_t, int64_t

from fastfeed._clock cimport now_ns
from fastfeed._decode cimport FeedDecoder
from fastfeed._store cimport Store
from fastfeed._tap cimport TAP_FRAME

# Why feed_frames returned (the caller acts, then calls again from `next`).
DONE = 0        # every record up to `stop` is done
RECORD = 1      # records[next] is not a frame (a request or a gap): the caller's to handle
FULL = 2        # `max_updates` updates were applied: drain the ring, then go on
EARLY = 3       # with `speed`: records[next] is not due yet; sleep `until_ns - now`, then go on

cdef int64_t EARLY_SLACK_NS = 200_000  # closer than this to its time, a frame goes now


def feed_frames(FeedDecoder decoder, recv_ns, kind, offsets, data, Py_ssize_t start,
                Py_ssize_t stop, Py_ssize_t max_updates=-1, on_update=None, double speed=0.0,
                int64_t origin_rec_ns=0, int64_t origin_wall_ns=0):
    """Decode frames ``start .. stop - 1`` of a batch.

    ``recv_ns``/``kind``/``offsets``/``data``: the batch's int64 values, int8 dictionary
    indices, int32 binary offsets and binary data, as buffers (offset-free arrays). Frames the
    decoder refuses are counted and skipped, as the live feed does. With ``speed`` > 0, a frame is
    decoded no earlier than ``origin_wall_ns + (its recv_ns - origin_rec_ns) / speed``.

    Returns ``(why, next, updates, errors, until_ns)``.
    """
    cdef Py_buffer rb, kb, ob, db
    PyObject_GetBuffer(recv_ns, &rb, PyBUF_SIMPLE)
    try:
        PyObject_GetBuffer(kind, &kb, PyBUF_SIMPLE)
        try:
            PyObject_GetBuffer(offsets, &ob, PyBUF_SIMPLE)
            try:
                PyObject_GetBuffer(data, &db, PyBUF_SIMPLE)
                try:
                    return _feed(decoder, &rb, &kb, &ob, &db, start, stop, max_updates, on_update,
                                 speed, origin_rec_ns, origin_wall_ns)
                finally:
                    PyBuffer_Release(&db)
            finally:
                PyBuffer_Release(&ob)
        finally:
            PyBuffer_Release(&kb)
    finally:
        PyBuffer_Release(&rb)


cdef object _feed(FeedDecoder decoder, Py_buffer* rb, Py_buffer* kb, Py_buffer* ob, Py_buffer* db,
                  Py_ssize_t start, Py_ssize_t stop, Py_ssize_t max_updates, object on_update,
                  double speed, int64_t origin_rec_ns, int64_t origin_wall_ns):
    cdef const int64_t* rp = <const int64_t*>rb.buf
    cdef const int8_t* kp = <const int8_t*>kb.buf
    cdef const int32_t* op = <const int32_t*>ob.buf
    cdef const uint8_t* dp = <const uint8_t*>db.buf
    cdef Py_ssize_t i, n, updates = 0, errors = 0
    cdef int64_t due, now
    cdef Store store = decoder.store
    if start < 0 or stop < start:
        raise ValueError("start and stop must satisfy 0 <= start <= stop")
    if rb.len < stop * 8 or kb.len < stop or ob.len < (stop + 1) * 4:
        raise ValueError("the batch's buffers are shorter than its length")
    if stop > start and (op[start] < 0 or op[stop] > db.len):
        raise ValueError("binary offsets run past the data buffer")
    for i in range(start, stop):
        if kp[i] != TAP_FRAME:
            return RECORD, i, updates, errors, 0
        if speed > 0:
            due = origin_wall_ns + <int64_t>((rp[i] - origin_rec_ns) / speed)
            now = now_ns()
            if due - now > EARLY_SLACK_NS:
                return EARLY, i, updates, errors, due
        try:
            n = decoder.feed(dp + op[i], op[i + 1] - op[i], rp[i])
        except Exception:
            errors += 1
            continue
        updates += n
        if n > 0 and on_update is not None:
            on_update(store.latest(n))
        if max_updates > 0 and updates >= max_updates:
            return FULL, i + 1, updates, errors, 0
    return DONE, stop, updates, errors, 0
