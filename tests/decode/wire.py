"""A tiny protobuf wire *encoder* for tests: it writes exactly what it is told, malformed or not.

A message is a list of fields ``(field_number, wire_type, value)``:

- VARINT (0): an int; negative ints are written as 10-byte two's complement, as int64 is.
- FIXED64 (1): a float (little-endian double), an int (uint64/int64), or 8 raw bytes.
- LEN (2): bytes/str, or a nested field list (a sub-message).
- SGROUP (3): a nested field list, written between the start-group and end-group tags.
- EGROUP (4): value ignored; writes a lone end-group tag.
- FIXED32 (5): an int, a float (little-endian single), or 4 raw bytes.
- RAW (-1): ``value`` is written verbatim (field_number ignored): for hostile inputs.
"""
from __future__ import annotations

import struct

VARINT, FIXED64, LEN, SGROUP, EGROUP, FIXED32 = 0, 1, 2, 3, 4, 5
RAW = -1


class Overlong(int):
    """An int to be written as a varint ``pad`` bytes longer than it needs (still valid: protobuf
    reads up to 10 bytes for a value, 5 for a tag)."""

    def __new__(cls, value: int, pad: int):
        self = super().__new__(cls, value)
        self.pad = pad
        return self


def varint(n: int, pad: int = 0) -> bytes:
    """Unsigned LEB128; a negative n is taken as a 64-bit two's complement value (10 bytes).
    ``pad`` extra bytes make it overlong (0x80 ... 0x00)."""
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            break
    if pad:
        out[-1] |= 0x80
        out += b"\x80" * (pad - 1) + b"\x00"
    return bytes(out)


def tag(field_number: int, wire_type: int, pad: int = 0) -> bytes:
    return varint((field_number << 3) | wire_type, pad)


def encode(fields) -> bytes:
    """Fields are (number, wire type, value), or (number, wire type, value, tag padding)."""
    out = bytearray()
    for number, wt, value, *tag_pad in fields:
        if wt == RAW:
            out += value
            continue
        out += tag(number, wt, *tag_pad)
        if wt == VARINT:
            out += varint(int(value), getattr(value, "pad", 0))
        elif wt == FIXED64:
            if isinstance(value, float):
                out += struct.pack("<d", value)
            elif isinstance(value, int):
                out += struct.pack("<Q", value % (1 << 64))
            else:
                assert len(value) == 8
                out += value
        elif wt == LEN:
            if isinstance(value, str):
                value = value.encode("utf-8")
            elif isinstance(value, list):
                value = encode(value)
            out += varint(len(value)) + bytes(value)
        elif wt == SGROUP:
            out += encode(value) + tag(number, EGROUP)
        elif wt == EGROUP:
            pass
        elif wt == FIXED32:
            if isinstance(value, float):
                out += struct.pack("<f", value)
            elif isinstance(value, int):
                out += struct.pack("<I", value % (1 << 32))
            else:
                assert len(value) == 4
                out += value
        else:
            raise ValueError(f"wire type {wt}")
    return bytes(out)


def message(*fields) -> list:
    """Convenience: ``message((1, VARINT, 5), ...)`` is just the list of its fields."""
    return list(fields)


def dbl(number: int, x: float):
    return (number, FIXED64, float(x))


def i64(number: int, n: int):
    return (number, VARINT, n)


def sub(number: int, fields):
    return (number, LEN, list(fields))
