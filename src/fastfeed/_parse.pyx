"""The FeedResponse schema walk (see _parse.pxd)."""

from libc.math cimport NAN
from libc.stdint cimport uint8_t, int32_t, uint32_t, int64_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy, memmove, memset

from fastfeed._store cimport hash_key, same_bytes
from fastfeed._wire cimport *

from fastfeed.errors import DecodeError
from fastfeed.schema import STATUS_NAMES

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
    WE_SIZE: "length prefix longer than 5 bytes",
}


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
    cdef uint64_t w
    if wr_len(r, &start, &n) < 0:
        return -1
    if 0 < n <= 8 and r.end - start >= 8:
        # Short ASCII ("1d", "I1": a bar's interval), the common case: one word, no call.
        memcpy(&w, r.buf + start, 8)
        if w & (0x8080808080808080ULL >> (8 * (8 - n))):
            if not utf8_valid(r.buf + start, n):
                return wr_fail(r, WE_UTF8, start)
    elif not utf8_valid(r.buf + start, n):
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

cdef enum:
    POOL_MIN = 16
    # Map pools this full are compacted (a repeated key keeps its last entry) before they grow.
    COMPACT_AT = 1024
    # Between frames a pool keeps at most this many bytes more than the last frame needed.
    POOL_KEEP_BYTES = 1 << 20


cdef inline bint grow(void** pool, Py_ssize_t* cap, Py_ssize_t item) noexcept nogil:
    cdef Py_ssize_t n = cap[0] * 2 if cap[0] else POOL_MIN
    cdef void* p = realloc(pool[0], n * item)
    if p == NULL:
        return False
    pool[0] = p
    cap[0] = n
    return True


cdef inline void shrink(void** pool, Py_ssize_t* cap, Py_ssize_t used, Py_ssize_t item) noexcept nogil:
    # After an outlier frame: give the memory back, keeping room for twice what was used.
    cdef Py_ssize_t n = POOL_MIN
    cdef void* p
    if cap[0] * item <= POOL_KEEP_BYTES or used * 4 > cap[0]:
        return
    while n < 2 * used:
        n <<= 1
    p = realloc(pool[0], n * item)
    if p != NULL:
        pool[0] = p
        cap[0] = n


cdef int32_t* key_table(Py_ssize_t n, uint64_t* mask) noexcept nogil:
    # An empty open-addressing table of at least 2n slots (-1: free), for the compactions.
    cdef uint64_t size = 16
    cdef int32_t* table
    while size < <uint64_t>(2 * n):
        size <<= 1
    table = <int32_t*>malloc(size * sizeof(int32_t))
    if table != NULL:
        memset(table, 0xFF, size * sizeof(int32_t))
    mask[0] = size - 1
    return table


cdef bint compact_feeds(Scratch* s) noexcept nogil:
    # Keep the last entry of each key (the one the map keeps), in entry order, and only the
    # levels and bars those use. False when out of memory.
    cdef uint64_t mask, i
    cdef int32_t* table = key_table(s.n_feeds, &mask)
    cdef Py_ssize_t k, w = 0, wq = 0, wb = 0
    cdef SFeed* f
    cdef SFeed* g
    if table == NULL:
        return False
    k = s.n_feeds - 1
    while k >= 0:
        f = &s.feeds[k]
        f.hash = hash_key(<const char*>s.buf + f.key_off, f.key_len)
        f.row = 0                       # kept
        i = f.hash & mask
        while table[i] >= 0:
            g = &s.feeds[table[i]]
            if (g.hash == f.hash and g.key_len == f.key_len
                    and same_bytes(<const char*>s.buf + g.key_off,
                                   <const char*>s.buf + f.key_off, f.key_len)):
                f.row = -1              # a later entry of the same key replaces this one
                break
            i = (i + 1) & mask
        if f.row == 0:
            table[i] = <int32_t>k
        k -= 1
    free(table)
    for k in range(s.n_feeds):
        f = &s.feeds[k]
        if f.row < 0:
            continue
        # Pools fill in entry order, so moving the survivors' ranges down never overlaps ahead.
        memmove(&s.quotes[wq], &s.quotes[f.q_start], f.q_count * sizeof(SQuote))
        f.q_start = wq
        wq += f.q_count
        memmove(&s.bars[wb], &s.bars[f.b_start], f.b_count * sizeof(SBar))
        f.b_start = wb
        wb += f.b_count
        if w != k:
            s.feeds[w] = f[0]
        w += 1
    s.n_feeds = w
    s.n_quotes = wq
    s.n_bars = wb
    return True


cdef bint compact_statuses(Scratch* s) noexcept nogil:
    # As compact_feeds, for MarketInfo's three maps: the last entry of each (map, key).
    cdef uint64_t mask, i, h
    cdef uint64_t* hashes = <uint64_t*>malloc(s.n_statuses * sizeof(uint64_t))
    cdef int32_t* table = key_table(s.n_statuses, &mask)
    cdef Py_ssize_t k, w = 0
    cdef SStatus* st
    cdef SStatus* other
    cdef bint kept
    cdef char* keep = <char*>malloc(s.n_statuses)
    if table == NULL or hashes == NULL or keep == NULL:
        free(table)
        free(hashes)
        free(keep)
        return False
    k = s.n_statuses - 1
    while k >= 0:
        st = &s.statuses[k]
        h = hash_key(<const char*>s.buf + st.key_off, st.key_len) ^ <uint64_t>st.map
        hashes[k] = h
        kept = True
        i = h & mask
        while table[i] >= 0:
            other = &s.statuses[table[i]]
            if (hashes[table[i]] == h and other.map == st.map and other.key_len == st.key_len
                    and same_bytes(<const char*>s.buf + other.key_off,
                                   <const char*>s.buf + st.key_off, st.key_len)):
                kept = False
                break
            i = (i + 1) & mask
        if kept:
            table[i] = <int32_t>k
        keep[k] = kept
        k -= 1
    for k in range(s.n_statuses):
        if keep[k]:
            if w != k:
                s.statuses[w] = s.statuses[k]
            w += 1
    s.n_statuses = w
    free(table)
    free(hashes)
    free(keep)
    return True


cdef inline SQuote* new_quote(Scratch* s, SFeed* f) noexcept nogil:
    if f.q_count >= s.max_quotes:
        s.spare_quote = ZERO_QUOTE
        return &s.spare_quote
    if s.n_quotes == s.cap_quotes and not grow(<void**>&s.quotes, &s.cap_quotes, sizeof(SQuote)):
        s.no_memory = True
        return NULL
    s.n_quotes += 1
    f.q_count += 1
    s.quotes[s.n_quotes - 1] = ZERO_QUOTE
    return &s.quotes[s.n_quotes - 1]


cdef inline SBar* new_bar(Scratch* s) noexcept nogil:
    if s.n_bars == s.cap_bars and not grow(<void**>&s.bars, &s.cap_bars, sizeof(SBar)):
        s.no_memory = True
        return NULL
    s.n_bars += 1
    memset(&s.bars[s.n_bars - 1], 0, sizeof(SBar))
    s.bars[s.n_bars - 1].repeats = 1
    return &s.bars[s.n_bars - 1]


cdef void merge_last_bar(Scratch* s, SFeed* f) noexcept nogil:
    # The feed's newest bar, past max_bars: it replaces the latest bar of its interval (the
    # last of an interval wins, and the first decides its slot), or is counted as dropped.
    cdef SBar* b = &s.bars[f.b_start + f.b_count - 1]
    cdef SBar* older
    cdef Py_ssize_t j = f.b_count - 2
    cdef int32_t repeats
    while j >= 0:
        older = &s.bars[f.b_start + j]
        if (older.interval_len == b.interval_len
                and same_bytes(<const char*>s.buf + older.interval_off,
                               <const char*>s.buf + b.interval_off, b.interval_len)):
            repeats = older.repeats + 1
            older[0] = b[0]
            older.repeats = repeats
            break
        j -= 1
    if j < 0:
        f.b_dropped += 1
    f.b_count -= 1
    s.n_bars -= 1


cdef inline SStatus* new_status(Scratch* s, int32_t which) noexcept nogil:
    cdef SStatus* st
    cdef bint full = s.n_statuses == s.cap_statuses
    if full and s.cap_statuses >= COMPACT_AT:
        if not compact_statuses(s):
            s.no_memory = True
            return NULL
        full = s.n_statuses * 2 > s.cap_statuses
    if full and not grow(<void**>&s.statuses, &s.cap_statuses, sizeof(SStatus)):
        s.no_memory = True
        return NULL
    st = &s.statuses[s.n_statuses]
    s.n_statuses += 1
    memset(st, 0, sizeof(SStatus))
    st.map = which
    return st


cdef inline void clear_case(Scratch* s, SFeed* f) noexcept nogil:
    # A oneof that switches branch drops what the other branch had, as protobuf does. The
    # feed being parsed owns the pools' tails, so its dropped levels and bars are given back.
    s.n_quotes = f.q_start
    s.n_bars = f.b_start
    f.b_dropped = 0
    f.ff_case = FF_NONE
    f.has = 0
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
    if wr_next(r, 0x09) and wr_double(r, &f.ltpc.ltp) < 0:
        return -1
    if wr_next(r, 0x10):
        if wr_varint_long(r, &v) < 0:
            return -1
        f.ltpc.ltt = <int64_t>v
    if wr_next(r, 0x18):
        if wr_varint(r, &v) < 0:
            return -1
        f.ltpc.ltq = <int64_t>v
    if wr_next(r, 0x21) and wr_double(r, &f.ltpc.cp) < 0:
        return -1
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
    # Fields in the order protobuf writes them take a path without the dispatch; whatever is
    # left (out of order, repeated, unknown) goes through the general loop below.
    if wr_next(r, 0x08):
        if wr_varint(r, &v) < 0:
            return -1
        q.bid_q = <int64_t>v
    if wr_next(r, 0x11) and wr_double(r, &q.bid_p) < 0:
        return -1
    if wr_next(r, 0x18):
        if wr_varint(r, &v) < 0:
            return -1
        q.ask_q = <int64_t>v
    if wr_next(r, 0x21) and wr_double(r, &q.ask_p) < 0:
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
            q = new_quote(s, f)
            if q == NULL or parse_quote(r, q) < 0:
                return -1
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
    if wr_next(r, 0x09) and wr_double(r, &f.greeks.delta) < 0:
        return -1
    if wr_next(r, 0x11) and wr_double(r, &f.greeks.theta) < 0:
        return -1
    if wr_next(r, 0x19) and wr_double(r, &f.greeks.gamma) < 0:
        return -1
    if wr_next(r, 0x21) and wr_double(r, &f.greeks.vega) < 0:
        return -1
    if wr_next(r, 0x29) and wr_double(r, &f.greeks.rho) < 0:
        return -1
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
    if wr_next(r, 0x0A) and read_string(r, &b.interval_off, &b.interval_len) < 0:
        return -1
    if wr_next(r, 0x11) and wr_double(r, &b.open) < 0:
        return -1
    if wr_next(r, 0x19) and wr_double(r, &b.high) < 0:
        return -1
    if wr_next(r, 0x21) and wr_double(r, &b.low) < 0:
        return -1
    if wr_next(r, 0x29) and wr_double(r, &b.close) < 0:
        return -1
    if wr_next(r, 0x30):
        if wr_varint_long(r, &v) < 0:   # a day's volume takes three or four bytes
            return -1
        b.vol = <int64_t>v
    if wr_next(r, 0x38):
        if wr_varint_long(r, &v) < 0:
            return -1
        b.ts = <int64_t>v
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
            if f.b_count > s.max_bars:
                merge_last_bar(s, f)
        elif wr_skip(r, tag) < 0:
            return -1
    wr_leave(r, saved)
    return 0


cdef inline void start_stats(SFeed* f) noexcept nogil:
    # Only MarketFullFeed and FirstLevelWithGreeks carry the statistics: an LTPC feed never
    # pays for zeroing them.
    if not (f.has & H_STATS):
        f.stats = ZERO_STATS
        f.has |= H_STATS


cdef inline int parse_market_ff(WireReader* r, Scratch* s, SFeed* f) noexcept nogil:
    cdef Py_ssize_t saved
    cdef uint32_t tag
    cdef uint64_t v
    cdef int rc
    if wr_enter(r, &saved) < 0:
        return -1
    start_stats(f)
    if wr_next(r, 0x0A) and parse_ltpc(r, f) < 0:
        return -1
    if wr_next(r, 0x12) and parse_market_level(r, s, f) < 0:
        return -1
    if wr_next(r, 0x1A) and parse_greeks(r, f) < 0:
        return -1
    if wr_next(r, 0x22) and parse_market_ohlc(r, s, f) < 0:
        return -1
    if wr_next(r, 0x29) and wr_double(r, &f.stats.atp) < 0:
        return -1
    if wr_next(r, 0x30):
        if wr_varint_long(r, &v) < 0:   # so does the volume traded
            return -1
        f.stats.vtt = <int64_t>v
    if wr_next(r, 0x39) and wr_double(r, &f.stats.oi) < 0:
        return -1
    if wr_next(r, 0x41) and wr_double(r, &f.stats.iv) < 0:
        return -1
    if wr_next(r, 0x49) and wr_double(r, &f.stats.tbq) < 0:
        return -1
    if wr_next(r, 0x51) and wr_double(r, &f.stats.tsq) < 0:
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
                if f.ff_case != FF_NONE:
                    clear_case(s, f)        # a first branch has nothing to drop
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
    start_stats(f)
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
    # An LTPC feed as protobuf writes it (the branch, then the mode) takes a path without the
    # dispatch; the loop below takes whatever follows, in any order.
    if (f.case_ == CASE_NONE or f.case_ == CASE_LTPC) and wr_next(r, 0x0A):
        f.case_ = CASE_LTPC
        if parse_ltpc(r, f) < 0:
            return -1
        if wr_next(r, 0x20):
            if wr_varint(r, &v) < 0:
                return -1
            f.mode = <int32_t>v
    while r.pos < r.end:
        if wr_tag(r, &tag) < 0:
            return -1
        if tag == 0x0A or tag == 0x12 or tag == 0x1A:
            if f.case_ != <int32_t>(tag >> 3):
                if f.case_ != CASE_NONE:
                    clear_case(s, f)        # a first branch has nothing to drop
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
    cdef bint has_key = False, dropped = False, full
    if wr_enter(r, &saved) < 0:
        return -1
    full = s.n_feeds == s.cap_feeds
    if full and s.cap_feeds >= COMPACT_AT:
        if not compact_feeds(s):
            s.no_memory = True
            return -1
        full = s.n_feeds * 2 > s.cap_feeds  # little came back: grow, so compactions stay rare
    if full and not grow(<void**>&s.feeds, &s.cap_feeds, sizeof(SFeed)):
        s.no_memory = True
        return -1
    f = &s.feeds[s.n_feeds]
    s.n_feeds += 1
    f.entry_off = r.pos
    f.entry_len = r.end - r.pos
    f.key_off = 0
    f.key_len = 0
    f.mode = 0
    f.case_ = CASE_NONE
    f.ff_case = FF_NONE
    f.has = 0
    f.q_start = s.n_quotes
    f.q_count = 0
    f.b_start = s.n_bars
    f.b_count = 0
    f.b_dropped = 0
    if wr_next(r, 0x0A):
        if wr_len(r, &start, &n) < 0:
            return -1
        r.pos = start + n
        f.key_off = start
        f.key_len = n
        has_key = True
    if wr_next(r, 0x12) and parse_feed(r, s, f) < 0:
        return -1
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
        s.n_quotes = f.q_start
        s.n_bars = f.b_start
    return 0


cdef inline int parse_status_info(WireReader* r, SStatus* st) noexcept nogil:
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
    s.info_off = r.pos
    s.info_len = r.end - r.pos
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


cdef void init_scratch(Scratch* s, Py_ssize_t max_quotes, Py_ssize_t max_bars) noexcept nogil:
    # Every scratch starts here: empty pools, and what a feed keeps of its levels and bars.
    memset(s, 0, sizeof(Scratch))
    s.max_quotes = max_quotes
    s.max_bars = max_bars


cdef void settle_scratch(Scratch* s) noexcept nogil:
    # After a frame (its scratch no longer needed): pools that it left mostly empty shrink.
    shrink(<void**>&s.feeds, &s.cap_feeds, s.n_feeds, sizeof(SFeed))
    shrink(<void**>&s.quotes, &s.cap_quotes, s.n_quotes, sizeof(SQuote))
    shrink(<void**>&s.bars, &s.cap_bars, s.n_bars, sizeof(SBar))
    shrink(<void**>&s.statuses, &s.cap_statuses, s.n_statuses, sizeof(SStatus))


cdef Py_ssize_t scratch_bytes(Scratch* s) noexcept nogil:
    return (s.cap_feeds * sizeof(SFeed) + s.cap_quotes * sizeof(SQuote)
            + s.cap_bars * sizeof(SBar) + s.cap_statuses * sizeof(SStatus))


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


cdef object utf8_error(Py_ssize_t offset):
    return DecodeError(offset, WIRE_REASONS[WE_UTF8])


cdef str text_at(const uint8_t* buf, Py_ssize_t off, Py_ssize_t n):
    return (<const char*>buf)[off:off + n].decode("utf-8")


cdef object enum_name(tuple names, int32_t value):
    # proto3 enums are open: a number the schema does not name stays a number.
    return names[value] if 0 <= value < len(names) else value


cdef object status_name(int32_t value):
    return enum_name(STATUS_NAMES, value)
