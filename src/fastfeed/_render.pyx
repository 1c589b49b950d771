"""to_dict: the official SDK's dict for a frame, rendered from fastfeed's own parse."""

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from libc.math cimport isnan, isinf
from libc.stdint cimport uint8_t, int32_t, uint32_t, int64_t, uint64_t
from libc.string cimport memcpy
from cpython.pyport cimport PY_SSIZE_T_MAX

from fastfeed._parse cimport *

from fastfeed.schema import REQUEST_MODE_NAMES, TYPE_NAMES
cdef tuple MAP_NAMES = ("segmentStatus", "casMarketStatus", "preOpenSessionStatus")


cdef inline object _num(double x):
    if isnan(x):
        return "NaN"
    if isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


cdef inline bint _nonzero(double x) noexcept nogil:
    # proto3 leaves out a double whose bits are all zero; -0.0 is kept.
    cdef uint64_t bits
    memcpy(&bits, &x, 8)
    return bits != 0


cdef inline void _put_double(dict d, str name, double x):
    if _nonzero(x):
        d[name] = _num(x)


cdef inline void _put_int(dict d, str name, int64_t x):
    if x != 0:
        d[name] = str(x)


cdef dict _ltpc_dict(SFeed* f):
    cdef dict d = {}
    _put_double(d, "ltp", f.ltpc.ltp)
    _put_int(d, "ltt", f.ltpc.ltt)
    _put_int(d, "ltq", f.ltpc.ltq)
    _put_double(d, "cp", f.ltpc.cp)
    if f.has & H_IEP:
        d["iep"] = _num(f.ltpc.iep)
    return d


cdef dict _quote_dict(SQuote* q):
    cdef dict d = {}
    _put_int(d, "bidQ", q.bid_q)
    _put_double(d, "bidP", q.bid_p)
    _put_int(d, "askQ", q.ask_q)
    _put_double(d, "askP", q.ask_p)
    return d


cdef dict _greeks_dict(SFeed* f):
    cdef dict d = {}
    _put_double(d, "delta", f.greeks.delta)
    _put_double(d, "theta", f.greeks.theta)
    _put_double(d, "gamma", f.greeks.gamma)
    _put_double(d, "vega", f.greeks.vega)
    _put_double(d, "rho", f.greeks.rho)
    return d


cdef dict _ohlc_dict(Scratch* s, SFeed* f):
    cdef list bars = []
    cdef dict d
    cdef SBar* b
    cdef Py_ssize_t i
    for i in range(f.b_start, f.b_start + f.b_count):
        b = &s.bars[i]
        d = {}
        if b.interval_len:
            d["interval"] = text_at(s.buf, b.interval_off, b.interval_len)
        _put_double(d, "open", b.open)
        _put_double(d, "high", b.high)
        _put_double(d, "low", b.low)
        _put_double(d, "close", b.close)
        _put_int(d, "vol", b.vol)
        _put_int(d, "ts", b.ts)
        bars.append(d)
    return {"ohlc": bars} if bars else {}


cdef dict _feed_dict(Scratch* s, SFeed* f):
    cdef dict d = {}, body = {}, inner
    cdef Py_ssize_t i
    if f.case_ != CASE_NONE and f.case_ != CASE_LTPC:
        if f.has & H_LTPC:
            body["ltpc"] = _ltpc_dict(f)
        if f.case_ == CASE_GREEKS and f.has & H_FIRST:
            body["firstDepth"] = _quote_dict(&f.first)
        if f.has & H_LEVEL:
            body["marketLevel"] = (
                {"bidAskQuote": [_quote_dict(&s.quotes[i])
                                 for i in range(f.q_start, f.q_start + f.q_count)]}
                if f.q_count else {})
        if f.has & H_GREEKS:
            body["optionGreeks"] = _greeks_dict(f)
        if f.has & H_OHLC:
            body["marketOHLC"] = _ohlc_dict(s, f)
        if f.case_ == CASE_GREEKS or f.ff_case == FF_MARKET:
            _put_int(body, "vtt", f.stats.vtt)
            _put_double(body, "oi", f.stats.oi)
            _put_double(body, "iv", f.stats.iv)
        if f.ff_case == FF_MARKET:
            _put_double(body, "atp", f.stats.atp)
            _put_double(body, "tbq", f.stats.tbq)
            _put_double(body, "tsq", f.stats.tsq)
            _put_double(body, "iep", f.stats.iep)
            _put_double(body, "rp", f.stats.rp)
            _put_int(body, "ieq", f.stats.ieq)
            _put_int(body, "iiqTotal", f.stats.iiq_total)
            _put_int(body, "iiqM", f.stats.iiq_m)
            if f.stats.cas_eligible:
                body["casEligible"] = True
    if f.case_ == CASE_LTPC:
        d["ltpc"] = _ltpc_dict(f)
    elif f.case_ == CASE_GREEKS:
        d["firstLevelWithGreeks"] = body
    elif f.case_ == CASE_FULL:
        inner = {}
        if f.ff_case == FF_MARKET:
            inner["marketFF"] = body
        elif f.ff_case == FF_INDEX:
            inner["indexFF"] = body
        d["fullFeed"] = inner
    if f.mode != 0:
        d["requestMode"] = enum_name(REQUEST_MODE_NAMES, f.mode)
    return d


cdef dict _market_info_dict(Scratch* s):
    cdef dict d = {}, maps = {}, status
    cdef SStatus* st
    cdef Py_ssize_t i
    for i in range(s.n_statuses):
        st = &s.statuses[i]
        m = maps.setdefault(MAP_NAMES[st.map], {})
        key = text_at(s.buf, st.key_off, st.key_len)
        if st.map == MI_SEGMENT:
            m[key] = status_name(st.value)
        else:
            status = {}
            if st.status_len:
                status["status"] = text_at(s.buf, st.status_off, st.status_len)
            _put_int(status, "updatedTime", st.updated)
            m[key] = status
    for name in MAP_NAMES:
        if name in maps:
            d[name] = maps[name]
    return d


def to_dict(payload):
    """The dict the official SDK builds for a frame:
    ``MessageToDict(FeedResponse.FromString(payload))``, rendered from fastfeed's own parse.
    Raises :class:`DecodeError` where protobuf would."""
    cdef Py_buffer view
    # A scratch area per call: building the dicts can run other Python code (a GC pass, another
    # thread's to_dict), which must not find a shared scratch half used.
    cdef Scratch scratch
    cdef Scratch* s = &scratch
    cdef SFeed* f
    cdef dict out = {}, feeds = {}
    cdef Py_ssize_t i
    init_scratch(s, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX)  # the SDK's dict has every level and bar
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        if parse_frame(s, <const uint8_t*>view.buf, view.len) < 0:
            raise wire_error(s)
        for i in range(s.n_feeds):
            f = &s.feeds[i]
            if not utf8_valid(s.buf + f.key_off, f.key_len):
                raise utf8_error(f.key_off)
            feeds[text_at(s.buf, f.key_off, f.key_len)] = _feed_dict(s, f)
        if s.type_ != 0:
            out["type"] = enum_name(TYPE_NAMES, s.type_)
        if feeds:
            out["feeds"] = feeds
        _put_int(out, "currentTs", s.current_ts)
        if s.has_market_info:
            out["marketInfo"] = _market_info_dict(s)
        return out
    finally:
        free_scratch(s)
        PyBuffer_Release(&view)
