"""Upstox Market Data Feed v3 decoder: FeedResponse bytes to the store, and to the SDK's dict."""

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.math cimport NAN, isnan, isinf
from libc.stdint cimport uint8_t, int32_t, uint32_t, int64_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy, memset, memcmp
from posix.time cimport clock_gettime, timespec, CLOCK_REALTIME

from fastfeed._wire cimport *
from fastfeed._store cimport *

from fastfeed.errors import DecodeError, InstrumentLimitError

cdef dict WIRE_REASONS = {
    WE_TRUNCATED: "truncated",
    WE_VARINT: "varint longer than 10 bytes",
    WE_TAG: "bad field tag",
    WE_FIELD_ZERO: "field number 0",
    WE_WIRETYPE: "invalid wire type",
    WE_LENGTH: "length runs past the end of the message",
    WE_GROUP: "unbalanced group",
    WE_DEPTH: "nesting deeper than 100",
    WE_UTF8: "string is not valid UTF-8",
}

cdef tuple TYPE_NAMES = ("initial_feed", "live_feed", "market_info")
cdef tuple MODE_NAMES = ("ltpc", "full_d5", "option_greeks", "full_d30")
cdef tuple STATUS_NAMES = ("PRE_OPEN_START", "PRE_OPEN_END", "NORMAL_OPEN", "NORMAL_CLOSE",
                           "CLOSING_START", "CLOSING_END")


# --- UTF-8 -------------------------------------------------------------------------------------

cdef bint utf8_valid(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    # Strict, as protobuf checks proto3 strings: no overlongs, surrogates or code points past
    # U+10FFFF.
    cdef Py_ssize_t i = 0
    cdef uint64_t w
    cdef uint8_t c, c1
    while i < n:
        if i + 8 <= n:
            memcpy(&w, s + i, 8)
            if (w & 0x8080808080808080ULL) == 0:
                i += 8
                continue
        c = s[i]
        if c < 0x80:
            i += 1
        elif c < 0xC2:
            return False
        elif c < 0xE0:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return False
            i += 2
        elif c < 0xF0:
            if i + 2 >= n:
                return False
            c1 = s[i + 1]
            if (c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80:
                return False
            if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 >= 0xA0):
                return False
            i += 3
        elif c < 0xF5:
            if i + 3 >= n:
                return False
            c1 = s[i + 1]
            if ((c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80
                    or (s[i + 3] & 0xC0) != 0x80):
                return False
            if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 >= 0x90):
                return False
            i += 4
        else:
            return False
    return True


cdef inline int read_string(WireReader* r, Py_ssize_t* off, Py_ssize_t* size) noexcept nogil:
    cdef Py_ssize_t start, n
    if wr_len(r, &start, &n) < 0:
        return -1
    if not utf8_valid(r.buf + start, n):
        return wr_fail(r, WE_UTF8, start)
    r.pos = start + n
    off[0] = start
    size[0] = n
    return 0


# Zeroed by assignment rather than memset, which the compiler then turns into a few stores.
cdef SLtpc ZERO_LTPC
cdef SStats ZERO_STATS
cdef SGreeks ZERO_GREEKS
cdef SQuote ZERO_QUOTE
memset(&ZERO_LTPC, 0, sizeof(SLtpc))
memset(&ZERO_STATS, 0, sizeof(SStats))
memset(&ZERO_GREEKS, 0, sizeof(SGreeks))
memset(&ZERO_QUOTE, 0, sizeof(SQuote))


# --- scratch pools -----------------------------------------------------------------------------

cdef inline bint grow(void** pool, Py_ssize_t* cap, Py_ssize_t item) noexcept nogil:
    cdef Py_ssize_t n = cap[0] * 2 if cap[0] else 16
    cdef void* p = realloc(pool[0], n * item)
    if p == NULL:
        return False
    pool[0] = p
    cap[0] = n
    return True


cdef inline SQuote* new_quote(Scratch* s) noexcept nogil:
    if s.n_quotes == s.cap_quotes and not grow(<void**>&s.quotes, &s.cap_quotes, sizeof(SQuote)):
        s.no_memory = True
        return NULL
    s.n_quotes += 1
    s.quotes[s.n_quotes - 1] = ZERO_QUOTE
    return &s.quotes[s.n_quotes - 1]


cdef inline SBar* new_bar(Scratch* s) noexcept nogil:
    if s.n_bars == s.cap_bars and not grow(<void**>&s.bars, &s.cap_bars, sizeof(SBar)):
        s.no_memory = True
        return NULL
    s.n_bars += 1
    memset(&s.bars[s.n_bars - 1], 0, sizeof(SBar))
    return &s.bars[s.n_bars - 1]


cdef inline SStatus* new_status(Scratch* s, int32_t which) noexcept nogil:
    cdef SStatus* st
    if (s.n_statuses == s.cap_statuses
            and not grow(<void**>&s.statuses, &s.cap_statuses, sizeof(SStatus))):
        s.no_memory = True
        return NULL
    st = &s.statuses[s.n_statuses]
    s.n_statuses += 1
    memset(st, 0, sizeof(SStatus))
    st.map = which
    return st


cdef inline void clear_case(Scratch* s, SFeed* f) noexcept nogil:
    # A oneof that switches branch drops what the other branch had, as protobuf does.
    f.ff_case = FF_NONE
    f.has = 0
    f.stats = ZERO_STATS
    f.q_start = s.n_quotes
    f.q_count = 0
    f.b_start = s.n_bars
    f.b_count = 0


# --- the schema walk ---------------------------------------------------------------------------
# Each parse_* reads one length-delimited message at r.pos. Fields may come in any order and
# repeat: scalars take the last value, sub-messages merge, repeated fields append, unknown fields
# and known fields with another wire type are skipped, as protobuf does.

cdef inline int parse_double_value(WireReader* r, double* out) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    if wr_enter(r, &saved) < 0:
        return -1
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x09:
            if wr_double(r, out) < 0:
                return -1
        elif wr_skip(r, tag) < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_ltpc(WireReader* r, SFeed* f) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef uint64_t v
    cdef int rc
    if wr_enter(r, &saved) < 0:
        return -1
    if not (f.has & H_LTPC):
        f.ltpc = ZERO_LTPC
        f.has |= H_LTPC
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x09:
            rc = wr_double(r, &f.ltpc.ltp)
        elif tag == 0x10:
            rc = wr_varint(r, &v)
            f.ltpc.ltt = <int64_t>v
        elif tag == 0x18:
            rc = wr_varint(r, &v)
            f.ltpc.ltq = <int64_t>v
        elif tag == 0x21:
            rc = wr_double(r, &f.ltpc.cp)
        elif tag == 0x2A:
            if not (f.has & H_IEP):
                f.ltpc.iep = 0.0
                f.has |= H_IEP
            rc = parse_double_value(r, &f.ltpc.iep)
        else:
            rc = wr_skip(r, tag)
        if rc < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_quote(WireReader* r, SQuote* q) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef uint64_t v
    cdef int rc
    if wr_enter(r, &saved) < 0:
        return -1
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x08:
            rc = wr_varint(r, &v)
            q.bid_q = <int64_t>v
        elif tag == 0x11:
            rc = wr_double(r, &q.bid_p)
        elif tag == 0x18:
            rc = wr_varint(r, &v)
            q.ask_q = <int64_t>v
        elif tag == 0x21:
            rc = wr_double(r, &q.ask_p)
        else:
            rc = wr_skip(r, tag)
        if rc < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_market_level(WireReader* r, Scratch* s, SFeed* f) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef SQuote* q
    if wr_enter(r, &saved) < 0:
        return -1
    f.has |= H_LEVEL
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A:
            q = new_quote(s)
            if q == NULL or parse_quote(r, q) < 0:
                return -1
            f.q_count += 1
        elif wr_skip(r, tag) < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_greeks(WireReader* r, SFeed* f) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef int rc
    if wr_enter(r, &saved) < 0:
        return -1
    if not (f.has & H_GREEKS):
        f.greeks = ZERO_GREEKS
        f.has |= H_GREEKS
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x09:
            rc = wr_double(r, &f.greeks.delta)
        elif tag == 0x11:
            rc = wr_double(r, &f.greeks.theta)
        elif tag == 0x19:
            rc = wr_double(r, &f.greeks.gamma)
        elif tag == 0x21:
            rc = wr_double(r, &f.greeks.vega)
        elif tag == 0x29:
            rc = wr_double(r, &f.greeks.rho)
        else:
            rc = wr_skip(r, tag)
        if rc < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_bar(WireReader* r, SBar* b) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef uint64_t v
    cdef int rc
    if wr_enter(r, &saved) < 0:
        return -1
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A:
            rc = read_string(r, &b.interval_off, &b.interval_len)
        elif tag == 0x11:
            rc = wr_double(r, &b.open)
        elif tag == 0x19:
            rc = wr_double(r, &b.high)
        elif tag == 0x21:
            rc = wr_double(r, &b.low)
        elif tag == 0x29:
            rc = wr_double(r, &b.close)
        elif tag == 0x30:
            rc = wr_varint(r, &v)
            b.vol = <int64_t>v
        elif tag == 0x38:
            rc = wr_varint(r, &v)
            b.ts = <int64_t>v
        else:
            rc = wr_skip(r, tag)
        if rc < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_market_ohlc(WireReader* r, Scratch* s, SFeed* f) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef SBar* b
    if wr_enter(r, &saved) < 0:
        return -1
    f.has |= H_OHLC
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A:
            b = new_bar(s)
            if b == NULL or parse_bar(r, b) < 0:
                return -1
            f.b_count += 1
        elif wr_skip(r, tag) < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_market_ff(WireReader* r, Scratch* s, SFeed* f) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef uint64_t v
    cdef int rc
    if wr_enter(r, &saved) < 0:
        return -1
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A:
            rc = parse_ltpc(r, f)
        elif tag == 0x12:
            rc = parse_market_level(r, s, f)
        elif tag == 0x1A:
            rc = parse_greeks(r, f)
        elif tag == 0x22:
            rc = parse_market_ohlc(r, s, f)
        elif tag == 0x29:
            rc = wr_double(r, &f.stats.atp)
        elif tag == 0x30:
            rc = wr_varint(r, &v)
            f.stats.vtt = <int64_t>v
        elif tag == 0x39:
            rc = wr_double(r, &f.stats.oi)
        elif tag == 0x41:
            rc = wr_double(r, &f.stats.iv)
        elif tag == 0x49:
            rc = wr_double(r, &f.stats.tbq)
        elif tag == 0x51:
            rc = wr_double(r, &f.stats.tsq)
        elif tag == 0x59:
            rc = wr_double(r, &f.stats.iep)
        elif tag == 0x61:
            rc = wr_double(r, &f.stats.rp)
        elif tag == 0x68:
            rc = wr_varint(r, &v)
            f.stats.ieq = <int64_t>v
        elif tag == 0x70:
            rc = wr_varint(r, &v)
            f.stats.iiq_total = <int64_t>v
        elif tag == 0x78:
            rc = wr_varint(r, &v)
            f.stats.iiq_m = <int64_t>v
        elif tag == 0x80:
            rc = wr_varint(r, &v)
            f.stats.cas_eligible = v != 0
        else:
            rc = wr_skip(r, tag)
        if rc < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_index_ff(WireReader* r, Scratch* s, SFeed* f) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef int rc
    if wr_enter(r, &saved) < 0:
        return -1
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A:
            rc = parse_ltpc(r, f)
        elif tag == 0x12:
            rc = parse_market_ohlc(r, s, f)
        else:
            rc = wr_skip(r, tag)
        if rc < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_full_feed(WireReader* r, Scratch* s, SFeed* f) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef int rc
    if wr_enter(r, &saved) < 0:
        return -1
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A or tag == 0x12:
            if f.ff_case != <int32_t>(tag >> 3):
                clear_case(s, f)
                f.ff_case = tag >> 3
            if tag == 0x0A:
                rc = parse_market_ff(r, s, f)
            else:
                rc = parse_index_ff(r, s, f)
        else:
            rc = wr_skip(r, tag)
        if rc < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_greeks_feed(WireReader* r, Scratch* s, SFeed* f) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef uint64_t v
    cdef int rc
    if wr_enter(r, &saved) < 0:
        return -1
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A:
            rc = parse_ltpc(r, f)
        elif tag == 0x12:
            if not (f.has & H_FIRST):
                f.first = ZERO_QUOTE
                f.has |= H_FIRST
            rc = parse_quote(r, &f.first)
        elif tag == 0x1A:
            rc = parse_greeks(r, f)
        elif tag == 0x20:
            rc = wr_varint(r, &v)
            f.stats.vtt = <int64_t>v
        elif tag == 0x29:
            rc = wr_double(r, &f.stats.oi)
        elif tag == 0x31:
            rc = wr_double(r, &f.stats.iv)
        else:
            rc = wr_skip(r, tag)
        if rc < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_feed(WireReader* r, Scratch* s, SFeed* f) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef uint64_t v
    cdef int rc
    if wr_enter(r, &saved) < 0:
        return -1
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A or tag == 0x12 or tag == 0x1A:
            if f.case_ != <int32_t>(tag >> 3):
                clear_case(s, f)
                f.case_ = tag >> 3
            if tag == 0x0A:
                rc = parse_ltpc(r, f)
            elif tag == 0x12:
                rc = parse_full_feed(r, s, f)
            else:
                rc = parse_greeks_feed(r, s, f)
        elif tag == 0x20:
            rc = wr_varint(r, &v)
            f.mode = <int32_t>v
        else:
            rc = wr_skip(r, tag)
        if rc < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_feeds_entry(WireReader* r, Scratch* s) noexcept nogil:
    cdef Py_ssize_t saved, start, n
    cdef uint32_t tag
    cdef SFeed* f
    cdef bint has_key = False, dropped = False
    if wr_enter(r, &saved) < 0:
        return -1
    if s.n_feeds == s.cap_feeds and not grow(<void**>&s.feeds, &s.cap_feeds, sizeof(SFeed)):
        s.no_memory = True
        return -1
    f = &s.feeds[s.n_feeds]
    s.n_feeds += 1
    f.key_off = 0
    f.key_len = 0
    f.mode = 0
    f.case_ = CASE_NONE
    f.ff_case = FF_NONE
    f.has = 0
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A:
            # Keys are checked for UTF-8 when first registered; a key overwritten within its
            # entry never reaches the registry, so check it now.
            if has_key and not utf8_valid(r.buf + f.key_off, f.key_len):
                return wr_fail(r, WE_UTF8, f.key_off)
            if wr_len(r, &start, &n) < 0:
                return -1
            r.pos = start + n
            f.key_off = start
            f.key_len = n
            has_key = True
        elif tag == 0x12:
            if parse_feed(r, s, f) < 0:
                return -1
        else:
            if wr_skip(r, tag) < 0:
                return -1
            dropped = True
    wr_leave(r, saved)
    if dropped:
        # upb files a map entry with unknown fields of its own under the parent's unknown
        # fields: the entry is not in the map. Its key was still parsed, so still checked.
        if has_key and not utf8_valid(r.buf + f.key_off, f.key_len):
            return wr_fail(r, WE_UTF8, f.key_off)
        s.n_feeds -= 1
    return 0


cdef inline int parse_status_info(WireReader* r, SStatus* st) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef uint64_t v
    cdef int rc
    if wr_enter(r, &saved) < 0:
        return -1
    st.has_value = True
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A:
            rc = read_string(r, &st.status_off, &st.status_len)
        elif tag == 0x10:
            rc = wr_varint(r, &v)
            st.updated = <int64_t>v
        else:
            rc = wr_skip(r, tag)
        if rc < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline int parse_status_entry(WireReader* r, Scratch* s, int32_t which) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef uint64_t v
    cdef int rc
    cdef bint dropped = False
    cdef SStatus* st = new_status(s, which)
    if st == NULL or wr_enter(r, &saved) < 0:
        return -1
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A:
            rc = read_string(r, &st.key_off, &st.key_len)
        elif tag == 0x10 and which == MI_SEGMENT:
            rc = wr_varint(r, &v)
            st.value = <int32_t>v
        elif tag == 0x12 and which != MI_SEGMENT:
            rc = parse_status_info(r, st)
        else:
            rc = wr_skip(r, tag)
            dropped = True
        if rc < 0:
            return -1
    wr_leave(r, saved)
    if dropped:
        s.n_statuses -= 1   # as for feeds entries: an entry with unknown fields is not kept
    return 0


cdef inline int parse_market_info(WireReader* r, Scratch* s) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef int rc
    if wr_enter(r, &saved) < 0:
        return -1
    s.has_market_info = True
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A or tag == 0x12 or tag == 0x1A:
            rc = parse_status_entry(r, s, (tag >> 3) - 1)
        else:
            rc = wr_skip(r, tag)
        if rc < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef int parse_frame(Scratch* s, const uint8_t* data, Py_ssize_t size) noexcept nogil:
    # The reader is a local that never escapes, so its fields live in registers through the
    # whole (inlined) walk.
    cdef WireReader reader
    cdef WireReader* r = &reader
    cdef uint32_t tag
    cdef uint64_t v
    cdef int rc = 0
    wr_init(r, data, size)
    s.buf = data
    s.type_ = 0
    s.current_ts = 0
    s.has_market_info = False
    s.no_memory = False
    s.err = WE_NONE
    s.err_pos = 0
    s.n_feeds = 0
    s.n_quotes = 0
    s.n_bars = 0
    s.n_statuses = 0
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            s.err = r.err
            s.err_pos = r.err_pos
            return -1
        if tag == 0x12:
            rc = parse_feeds_entry(r, s)
        elif tag == 0x08:
            rc = wr_varint(r, &v)
            s.type_ = <int32_t>v
        elif tag == 0x18:
            rc = wr_varint(r, &v)
            s.current_ts = <int64_t>v
        elif tag == 0x22:
            rc = parse_market_info(r, s)
        else:
            rc = wr_skip(r, tag)
        if rc < 0:
            s.err = r.err
            s.err_pos = r.err_pos
            return -1
    return 0


cdef void free_scratch(Scratch* s) noexcept nogil:
    free(s.feeds)
    free(s.quotes)
    free(s.bars)
    free(s.statuses)
    memset(s, 0, sizeof(Scratch))


cdef object wire_error(Scratch* s):
    if s.no_memory:
        return MemoryError("fastfeed: scratch area could not grow")
    return DecodeError(s.err_pos, WIRE_REASONS.get(s.err, "malformed"))


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


# --- commit: scratch to store ------------------------------------------------------------------

cdef inline int32_t kind_of(SFeed* f) noexcept nogil:
    if f.case_ == CASE_LTPC:
        return KIND_LTPC
    if f.case_ == CASE_GREEKS:
        return KIND_GREEKS
    if f.case_ == CASE_FULL:
        if f.ff_case == FF_MARKET:
            return KIND_MARKET
        if f.ff_case == FF_INDEX:
            return KIND_INDEX
    return KIND_NONE


cdef void apply_bars(QuoteRow* row, Scratch* s, SFeed* f) noexcept nogil:
    cdef Py_ssize_t i
    cdef int j
    cdef SBar* b
    cdef Bar* slot
    for i in range(f.b_start, f.b_start + f.b_count):
        b = &s.bars[i]
        if b.interval_len >= INTERVAL_SIZE:
            row.bars_dropped += 1
            continue
        slot = NULL
        for j in range(row.n_bars):
            if (same_bytes(row.bars[j].interval, <const char*>s.buf + b.interval_off,
                           b.interval_len)
                    and (b.interval_len == INTERVAL_SIZE - 1
                         or row.bars[j].interval[b.interval_len] == 0)):
                slot = &row.bars[j]
                break
        if slot == NULL:
            if row.n_bars == MAX_BARS:
                row.bars_dropped += 1
                continue
            slot = &row.bars[row.n_bars]
            row.n_bars += 1
            memset(slot.interval, 0, INTERVAL_SIZE)
            memcpy(slot.interval, s.buf + b.interval_off, b.interval_len)
        slot.open = b.open
        slot.high = b.high
        slot.low = b.low
        slot.close = b.close
        slot.vol = b.vol
        slot.ts = b.ts


cdef void apply_feed(Store store, Scratch* s, SFeed* f, bint snapshot,
                     int64_t recv_ns) noexcept nogil:
    cdef QuoteRow* row = &store.rows[f.row]
    cdef UpdateRecord* rec
    cdef uint32_t parts = 0
    cdef int32_t kind = kind_of(f)
    cdef Py_ssize_t i, n
    cdef SQuote* q
    row.seq += 1
    if snapshot:
        memset(&row.mode, 0, sizeof(QuoteRow) - (<char*>&row.mode - <char*>row))
        row.ltpc_iep = NAN
        parts |= PART_SNAPSHOT
    row.updates += 1
    row.server_ts = s.current_ts
    row.recv_ns = recv_ns
    row.mode = f.mode
    row.flags &= ~FLAG_STALE
    if kind != KIND_NONE:
        row.kind = kind
    if f.has & H_LTPC:
        parts |= PART_LTPC
        row.ltp = f.ltpc.ltp
        row.ltt = f.ltpc.ltt
        row.ltq = f.ltpc.ltq
        row.cp = f.ltpc.cp
        row.ltpc_iep = f.ltpc.iep if f.has & H_IEP else NAN
    if kind == KIND_MARKET or kind == KIND_GREEKS:
        parts |= PART_STATS
        row.vtt = f.stats.vtt
        row.oi = f.stats.oi
        row.iv = f.stats.iv
        if kind == KIND_MARKET:
            row.atp = f.stats.atp
            row.tbq = f.stats.tbq
            row.tsq = f.stats.tsq
            row.iep = f.stats.iep
            row.rp = f.stats.rp
            row.ieq = f.stats.ieq
            row.iiq_total = f.stats.iiq_total
            row.iiq_m = f.stats.iiq_m
            row.cas_eligible = f.stats.cas_eligible
    if f.has & H_GREEKS:
        parts |= PART_GREEKS
        row.delta = f.greeks.delta
        row.theta = f.greeks.theta
        row.gamma = f.greeks.gamma
        row.vega = f.greeks.vega
        row.rho = f.greeks.rho
    if f.has & (H_LEVEL | H_FIRST):
        parts |= PART_DEPTH
        if f.has & H_LEVEL:
            n = f.q_count if f.q_count < MAX_LEVELS else MAX_LEVELS
            for i in range(n):
                q = &s.quotes[f.q_start + i]
                row.bid_p[i] = q.bid_p
                row.bid_q[i] = q.bid_q
                row.ask_p[i] = q.ask_p
                row.ask_q[i] = q.ask_q
        else:
            n = 1
            row.bid_p[0] = f.first.bid_p
            row.bid_q[0] = f.first.bid_q
            row.ask_p[0] = f.first.ask_p
            row.ask_q[0] = f.first.ask_q
        for i in range(n, row.n_levels):
            row.bid_p[i] = 0
            row.bid_q[i] = 0
            row.ask_p[i] = 0
            row.ask_q[i] = 0
        row.n_levels = <int32_t>n
    if f.has & H_OHLC:
        parts |= PART_OHLC
        apply_bars(row, s, f)
    row.parts |= parts

    rec = store.next_record()
    rec.row = f.row
    rec.parts = parts
    rec.mode = row.mode
    rec.kind = row.kind
    rec.recv_ns = recv_ns
    rec.server_ts = s.current_ts
    rec.ltp = row.ltp
    rec.ltt = row.ltt
    rec.ltq = row.ltq
    rec.cp = row.cp
    rec.bid_p = row.bid_p[0]
    rec.bid_q = row.bid_q[0]
    rec.ask_p = row.ask_p[0]
    rec.ask_q = row.ask_q[0]
    rec.vtt = row.vtt
    rec.oi = row.oi
    row.seq += 1


cdef class FeedDecoder:
    """Decodes FeedResponse frames into a :class:`Store`: the snapshot table and the update ring.

    One writer: call ``decode`` (or the transport's ``feed``) from one thread. Readers of the
    store may be on any thread.
    """

    def __cinit__(self, int max_instruments=4096, Py_ssize_t ring_capacity=1 << 16):
        self.store = Store(max_instruments, ring_capacity)
        self.last_entry = <int32_t*>malloc(max_instruments * sizeof(int32_t))
        if self.last_entry == NULL:
            raise MemoryError()
        self.market_status = {}
        self.cas_market_status = {}
        self.pre_open_status = {}

    def __dealloc__(self):
        free_scratch(&self.scratch)
        free(self.last_entry)

    def __repr__(self):
        return (f"<FeedDecoder instruments={len(self.store)}/{self.store.max_instruments} "
                f"frames={self.frames} updates={self.updates} errors={self.errors}>")

    cdef Py_ssize_t feed(self, const uint8_t* data, Py_ssize_t size, int64_t recv_ns) except -1:
        """Decode one frame into the store; returns the number of instrument updates applied."""
        cdef Scratch* s = &self.scratch
        cdef Store store = self.store
        cdef SFeed* f
        cdef Py_ssize_t i, applied = 0, unknown = 0
        cdef int32_t row
        cdef bint snapshot

        if parse_frame(s, data, size) < 0:
            self.errors += 1
            raise wire_error(s)

        # Resolve every key before touching anything, so an error leaves the store as it was.
        for i in range(s.n_feeds):
            f = &s.feeds[i]
            f.hash = hash_key(<const char*>data + f.key_off, f.key_len)
            f.row = store.find(<const char*>data + f.key_off, f.key_len, f.hash)
            if f.row < 0:
                if not utf8_valid(data + f.key_off, f.key_len):
                    self.errors += 1
                    raise DecodeError(f.key_off, WIRE_REASONS[WE_UTF8])
                unknown += 1
        if unknown:
            self._register(unknown)

        # A key repeated within one frame: the last entry wins whole, as in a protobuf map.
        for i in range(s.n_feeds):
            self.last_entry[s.feeds[i].row] = <int32_t>i
        if recv_ns <= 0:
            recv_ns = now_ns()
        snapshot = s.type_ == 0
        for i in range(s.n_feeds):
            f = &s.feeds[i]
            if self.last_entry[f.row] == i:
                apply_feed(store, s, f, snapshot, recv_ns)
                applied += 1

        if s.has_market_info:
            self._commit_market_info()
        self.frames += 1
        self.bytes += size
        self.updates += applied
        if s.type_ == 1:
            self.live_frames += 1
        elif s.type_ == 0:
            self.initial_frames += 1
        elif s.type_ == 2:
            self.market_info_frames += 1
        else:
            self.other_frames += 1
        return applied

    cdef int _register(self, Py_ssize_t unknown) except -1:
        cdef Scratch* s = &self.scratch
        cdef Store store = self.store
        cdef SFeed* f
        cdef Py_ssize_t i
        if unknown > store.rows_free():
            # Near capacity only: count distinct new keys exactly before refusing.
            new_keys = set()
            for i in range(s.n_feeds):
                f = &s.feeds[i]
                if f.row < 0:
                    new_keys.add((<const char*>s.buf)[f.key_off:f.key_off + f.key_len])
            if len(new_keys) > store.rows_free():
                self.errors += 1
                raise InstrumentLimitError(store.max_instruments, len(new_keys))
        for i in range(s.n_feeds):
            f = &s.feeds[i]
            if f.row < 0:
                f.row = store.find(<const char*>s.buf + f.key_off, f.key_len, f.hash)
                if f.row < 0:
                    f.row = store.add(<const char*>s.buf + f.key_off, f.key_len, f.hash)
        return 0

    cdef int _commit_market_info(self) except -1:
        cdef Scratch* s = &self.scratch
        cdef SStatus* st
        cdef Py_ssize_t i
        for i in range(s.n_statuses):
            st = &s.statuses[i]
            key = _text(s.buf, st.key_off, st.key_len)
            if st.map == MI_SEGMENT:
                self.market_status[key] = _enum_name(STATUS_NAMES, st.value)
            elif st.map == MI_CAS:
                self.cas_market_status[key] = (
                    _text(s.buf, st.status_off, st.status_len), st.updated)
            else:
                self.pre_open_status[key] = (
                    _text(s.buf, st.status_off, st.status_len), st.updated)
        return 0

    def decode(self, payload, recv_ns=None):
        """Decode one FeedResponse frame (bytes, bytearray or memoryview).

        Returns the number of instrument updates applied. Raises :class:`DecodeError` for bytes
        protobuf would reject and :class:`InstrumentLimitError` when the frame needs more rows
        than are left; either way nothing changes but the ``errors`` counter.
        """
        cdef Py_buffer view
        cdef int64_t ns = 0 if recv_ns is None else recv_ns
        if type(payload) is bytes:
            return self.feed(<const uint8_t*>PyBytes_AS_STRING(payload),
                             PyBytes_GET_SIZE(payload), ns)
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            return self.feed(<const uint8_t*>view.buf, view.len, ns)
        finally:
            PyBuffer_Release(&view)

    # The store's reader API, here too so that the decoder is the one object most code holds.

    def quote(self, key):
        """The latest :class:`Quote` of ``key``, or None for a key never seen."""
        return self.store.quote(key)

    def reader(self, bint from_start=False):
        return self.store.reader(from_start)

    @property
    def snapshot(self):
        return self.store.snapshot

    @property
    def ring(self):
        return self.store.ring

    def stats(self):
        """Counters, as a dict."""
        return {
            "frames": self.frames, "bytes": self.bytes, "updates": self.updates,
            "errors": self.errors, "initial_feed": self.initial_frames,
            "live_feed": self.live_frames, "market_info": self.market_info_frames,
            "other": self.other_frames, "instruments": len(self.store),
        }


# --- to_dict: the SDK's dict, rendered from the same scratch ----------------------------------

cdef inline str _text(const uint8_t* buf, Py_ssize_t off, Py_ssize_t n):
    return (<const char*>buf)[off:off + n].decode("utf-8")


cdef inline object _enum_name(tuple names, int32_t value):
    return names[value] if 0 <= value < len(names) else value


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
            d["interval"] = _text(s.buf, b.interval_off, b.interval_len)
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
        d["requestMode"] = _enum_name(MODE_NAMES, f.mode)
    return d


cdef dict _market_info_dict(Scratch* s):
    cdef dict d = {}, maps = {}, status
    cdef SStatus* st
    cdef Py_ssize_t i
    cdef tuple names = ("segmentStatus", "casMarketStatus", "preOpenSessionStatus")
    for i in range(s.n_statuses):
        st = &s.statuses[i]
        m = maps.setdefault(names[st.map], {})
        key = _text(s.buf, st.key_off, st.key_len)
        if st.map == MI_SEGMENT:
            m[key] = _enum_name(STATUS_NAMES, st.value)
        else:
            status = {}
            if st.status_len:
                status["status"] = _text(s.buf, st.status_off, st.status_len)
            _put_int(status, "updatedTime", st.updated)
            m[key] = status
    for name in names:
        if name in maps:
            d[name] = maps[name]
    return d


cdef FeedDecoder _dict_decoder = None


def to_dict(payload):
    """The dict the official SDK builds for a frame:
    ``MessageToDict(FeedResponse.FromString(payload))``, rendered from fastfeed's own parse.
    Raises :class:`DecodeError` where protobuf would."""
    global _dict_decoder
    cdef Py_buffer view
    cdef Scratch* s
    cdef SFeed* f
    cdef dict out = {}, feeds = {}
    cdef Py_ssize_t i
    if _dict_decoder is None:
        _dict_decoder = FeedDecoder(1, 2)
    s = &_dict_decoder.scratch
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        if parse_frame(s, <const uint8_t*>view.buf, view.len) < 0:
            raise wire_error(s)
        for i in range(s.n_feeds):
            f = &s.feeds[i]
            if not utf8_valid(s.buf + f.key_off, f.key_len):
                raise DecodeError(f.key_off, WIRE_REASONS[WE_UTF8])
            feeds[_text(s.buf, f.key_off, f.key_len)] = _feed_dict(s, f)
        if s.type_ != 0:
            out["type"] = _enum_name(TYPE_NAMES, s.type_)
        if feeds:
            out["feeds"] = feeds
        _put_int(out, "currentTs", s.current_ts)
        if s.has_market_info:
            out["marketInfo"] = _market_info_dict(s)
        return out
    finally:
        PyBuffer_Release(&view)
