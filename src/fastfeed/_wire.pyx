"""Out-of-line parts of the wire reader: skipping unknown fields, which may nest (groups)."""

from libc.stdint cimport uint8_t, uint32_t, uint64_t


cdef Py_ssize_t varint_at(const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end,
                          uint64_t* out) noexcept nogil:
    cdef uint64_t v = 0
    cdef uint64_t b
    cdef int shift = 0
    cdef Py_ssize_t p = pos
    cdef int i
    if end - p >= 10:
        # Room for the longest varint: no bounds checks (timestamps take 6 bytes).
        for i in range(10):
            b = buf[p + i]
            v |= (b & 0x7F) << (7 * i)  # the tenth byte's bits past the 64th drop out
            if b < 0x80:
                out[0] = v
                return p + i + 1
        return -<Py_ssize_t>WE_VARINT
    while shift < 70:
        if p >= end:
            return -<Py_ssize_t>WE_TRUNCATED
        b = buf[p]
        p += 1
        if shift < 64:
            # Bits past the 64th are dropped, as protobuf does.
            v |= (b & 0x7F) << shift
        if b < 0x80:
            out[0] = v
            return p
        shift += 7
    return -<Py_ssize_t>WE_VARINT


cdef Py_ssize_t skip_value(const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end, uint32_t tag,
                           int depth) noexcept nogil:
    cdef WireReader r
    cdef uint64_t v
    cdef Py_ssize_t start, size
    cdef uint32_t inner
    cdef uint32_t wire_type = tag & 7
    r.buf = buf
    r.pos = pos
    r.end = end
    r.depth = depth
    r.err = WE_NONE
    if wire_type == WT_VARINT:
        if wr_varint(&r, &v) < 0:
            return -<Py_ssize_t>r.err
        return r.pos
    if wire_type == WT_FIXED64:
        if wr_fixed64(&r, &v) < 0:
            return -<Py_ssize_t>r.err
        return r.pos
    if wire_type == WT_LEN:
        if wr_len(&r, &start, &size) < 0:
            return -<Py_ssize_t>r.err
        return start + size
    if wire_type == WT_FIXED32:
        if end - pos < 4:
            return -<Py_ssize_t>WE_TRUNCATED
        return pos + 4
    if wire_type == WT_SGROUP:
        if depth - 1 < 0:
            return -<Py_ssize_t>WE_DEPTH
        while True:
            if r.pos >= end:
                return -<Py_ssize_t>WE_TRUNCATED
            if wr_tag(&r, &inner) < 0:
                return -<Py_ssize_t>r.err
            if (inner & 7) == WT_EGROUP:
                if (inner >> 3) != (tag >> 3):
                    return -<Py_ssize_t>WE_GROUP
                return r.pos
            r.pos = skip_value(buf, r.pos, end, inner, depth - 1)
            if r.pos < 0:
                return r.pos
    if wire_type == WT_EGROUP:
        # An end-group tag with no group open.
        return -<Py_ssize_t>WE_GROUP
    return -<Py_ssize_t>WE_WIRETYPE
