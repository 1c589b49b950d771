# The protobuf wire reader: bytes, varints, fixed64 and lengths, with every bounds check in one
# place. It knows nothing of messages. Shaped after asyncpg's pgproto frb: a plain struct and inline
# functions. Errors are codes, not exceptions, so the hot path never touches Python; the first
# error's offset and reason are kept and the decoder turns them into a DecodeError once.

from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy

cdef enum:
    WT_VARINT = 0
    WT_FIXED64 = 1
    WT_LEN = 2
    WT_SGROUP = 3
    WT_EGROUP = 4
    WT_FIXED32 = 5

    # protobuf's default recursion limit: nested messages and groups together.
    MAX_DEPTH = 100

cdef enum WireError:
    WE_NONE = 0
    WE_TRUNCATED
    WE_VARINT
    WE_TAG
    WE_FIELD_ZERO
    WE_WIRETYPE
    WE_LENGTH
    WE_GROUP
    WE_DEPTH
    WE_UTF8
    WE_SIZE

ctypedef struct WireReader:
    const uint8_t* buf      # the whole frame
    Py_ssize_t pos          # next byte, as an offset into buf
    Py_ssize_t end          # end of the message being read (nested messages narrow it)
    int depth               # recursion budget left
    WireError err
    Py_ssize_t err_pos


cdef inline void wr_init(WireReader* r, const uint8_t* buf, Py_ssize_t size) noexcept nogil:
    r.buf = buf
    r.pos = 0
    r.end = size
    r.depth = MAX_DEPTH
    r.err = WE_NONE
    r.err_pos = 0


cdef inline int wr_fail(WireReader* r, WireError err, Py_ssize_t pos) noexcept nogil:
    if r.err == WE_NONE:
        r.err = err
        r.err_pos = pos
    return -1


# Out of line, and given the reader's fields by value so that the reader never escapes and the
# compiler keeps it in registers: returns the position after the varint, or -WireError.
cdef Py_ssize_t varint_at(const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end,
                          uint64_t* out) noexcept nogil


cdef inline int wr_varint(WireReader* r, uint64_t* out) noexcept nogil:
    # One and two byte varints (tags, small quantities, enums) inline; longer ones out of line.
    cdef Py_ssize_t p = r.pos
    cdef uint64_t b0, b1
    if r.end - p >= 2:
        b0 = r.buf[p]
        if b0 < 0x80:
            out[0] = b0
            r.pos = p + 1
            return 0
        b1 = r.buf[p + 1]
        if b1 < 0x80:
            out[0] = (b0 & 0x7F) | (b1 << 7)
            r.pos = p + 2
            return 0
    p = varint_at(r.buf, p, r.end, out)
    if p < 0:
        return wr_fail(r, <WireError>(-p), r.pos)
    r.pos = p
    return 0


cdef extern from *:
    """
    #if defined(_MSC_VER) && !defined(__clang__)
    #include <intrin.h>
    static inline int ff_ctz64(unsigned long long x) { unsigned long i; _BitScanForward64(&i, x); return (int)i; }
    #else
    #define ff_ctz64(x) __builtin_ctzll(x)
    #endif
    """
    # Index of the lowest set bit; x must not be 0.
    int ff_ctz64(uint64_t x) noexcept nogil


cdef inline int wr_varint_word(WireReader* r, uint64_t w, uint64_t stop,
                               uint64_t* out) noexcept nogil:
    # `w`: the next eight bytes; `stop`: their clear high bits that may end the varint (not 0).
    cdef int bits = ff_ctz64(stop) + 1  # 8 per byte of the varint
    w &= (0xFFFFFFFFFFFFFFFFULL >> (64 - bits)) & 0x7F7F7F7F7F7F7F7FULL
    w = ((w & 0x7F007F007F007F00ULL) >> 1) | (w & 0x007F007F007F007FULL)
    w = ((w & 0x3FFF00003FFF0000ULL) >> 2) | (w & 0x00003FFF00003FFFULL)
    w = ((w & 0x0FFFFFFF00000000ULL) >> 4) | (w & 0x000000000FFFFFFFULL)
    out[0] = w
    r.pos += bits >> 3
    return 0


cdef inline int wr_varint_long(WireReader* r, uint64_t* out) noexcept nogil:
    # For fields that are mostly 3-8 bytes long (epoch-ms timestamps take six, volumes three or
    # four): one word read, the first clear high bit ends the varint, and three shift-and-mask
    # steps pack its 7-bit groups, with no loop or call per byte. Only at those fields, so that
    # the code inlined at every other varint stays small. Anything else takes wr_varint.
    cdef uint64_t w, stop
    if r.end - r.pos >= 8:
        memcpy(&w, r.buf + r.pos, 8)    # little-endian hosts only, as in wr_fixed64
        stop = ~w & 0x8080808080808080ULL
        if stop != 0:
            return wr_varint_word(r, w, stop, out)
    return wr_varint(r, out)


cdef inline int wr_tag(WireReader* r, uint32_t* tag) noexcept nogil:
    # As upb: a tag is at most 5 bytes and fits 32 bits. Callers switch on the whole tag,
    # (field << 3) | wire_type; known tags are valid by construction, so field 0 and wire types
    # 6 and 7 are caught in wr_skip, off the fast path.
    cdef Py_ssize_t start = r.pos
    cdef uint64_t v
    if r.pos < r.end and r.buf[r.pos] < 0x80:
        tag[0] = r.buf[r.pos]
        r.pos += 1
        return 0
    if wr_varint(r, &v) < 0:
        return -1
    if r.pos - start > 5 or v > 0xFFFFFFFFULL:
        return wr_fail(r, WE_TAG, start)
    tag[0] = <uint32_t>v
    return 0


cdef inline bint wr_next(WireReader* r, uint8_t tag) noexcept nogil:
    """Consume a one-byte tag if it is the next byte: the in-order fast path of a message."""
    if r.pos < r.end and r.buf[r.pos] == tag:
        r.pos += 1
        return True
    return False


cdef inline int wr_fixed64(WireReader* r, uint64_t* out) noexcept nogil:
    if r.end - r.pos < 8:
        return wr_fail(r, WE_TRUNCATED, r.pos)
    # Little-endian hosts only (x86_64, aarch64), as the wire is.
    memcpy(out, r.buf + r.pos, 8)
    r.pos += 8
    return 0


cdef inline int wr_double(WireReader* r, double* out) noexcept nogil:
    if r.end - r.pos < 8:
        return wr_fail(r, WE_TRUNCATED, r.pos)
    memcpy(out, r.buf + r.pos, 8)
    r.pos += 8
    return 0


cdef inline int wr_len(WireReader* r, Py_ssize_t* start, Py_ssize_t* size) noexcept nogil:
    """Read a length prefix; start/size then describe the payload, which the caller must consume."""
    cdef Py_ssize_t at = r.pos
    cdef uint64_t n
    if at < r.end and r.buf[at] < 0x80:
        n = r.buf[at]               # most lengths are under 128
        r.pos = at + 1
    else:
        if wr_varint(r, &n) < 0:
            return -1
        if r.pos - at > 5:
            return wr_fail(r, WE_SIZE, at)  # upb reads a size in at most 5 bytes (found by fuzzing)
    if n >= 0x7FFFFFFF or <uint64_t>(r.end - r.pos) < n:
        return wr_fail(r, WE_LENGTH, at)
    start[0] = r.pos
    size[0] = <Py_ssize_t>n
    return 0


cdef inline int wr_enter(WireReader* r, Py_ssize_t* saved_end) noexcept nogil:
    """Narrow the reader to a length-delimited sub-message; wr_leave restores it."""
    cdef Py_ssize_t start, size
    if wr_len(r, &start, &size) < 0:
        return -1
    r.depth -= 1
    if r.depth < 0:
        return wr_fail(r, WE_DEPTH, start)
    saved_end[0] = r.end
    r.end = start + size
    return 0


cdef inline void wr_leave(WireReader* r, Py_ssize_t saved_end) noexcept nogil:
    r.depth += 1
    r.end = saved_end


# Skipping is out of line (it recurses for groups) and takes the reader's fields by value, so the
# reader itself never escapes and the compiler keeps it in registers. Returns the position after
# the value, or -WireError.
cdef Py_ssize_t skip_value(const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end, uint32_t tag,
                           int depth) noexcept nogil


cdef inline int wr_skip(WireReader* r, uint32_t tag) noexcept nogil:
    """Skip the value of a field the schema does not know (or knows with another wire type)."""
    cdef Py_ssize_t p
    if tag < 8:
        # Field 0 is malformed in a message, yet upb lets it pass inside a skipped group.
        return wr_fail(r, WE_FIELD_ZERO, r.pos)
    p = skip_value(r.buf, r.pos, r.end, tag, r.depth)
    if p < 0:
        return wr_fail(r, <WireError>(-p), r.pos)
    r.pos = p
    return 0
