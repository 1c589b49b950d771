"""The schema walk reads each message twice over: a fast path for fields in the order protobuf
writes them, and a general loop for everything else. Both must agree: every frame, re-encoded with
the fields of every message reversed or shuffled (the order of a repeated field's elements kept),
decodes to the same dict and the same quotes as the frame in schema order."""
from __future__ import annotations

import dataclasses
import random

from hypothesis import given, settings
from hypothesis import strategies as st

import strategies as S
from fastfeed import FeedDecoder, to_dict
from fastfeed.proto import fastfeed_market_v3_pb2 as pb
from google.protobuf.descriptor import Descriptor, FieldDescriptor

Field = tuple[int, int, bytes]  # field number, wire type, the bytes after the tag


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def fields(data: bytes) -> list[Field]:
    out, pos = [], 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        start = pos
        if wire_type == 0:
            _, pos = _varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            size, start = _varint(data, pos)
            pos = start + size
        else:
            raise AssertionError(f"wire type {wire_type} in a frame protobuf wrote")
        out.append((number, wire_type, data[start:pos]))
    return out


def reorder(data: bytes, desc: Descriptor, rank: "dict[int, float]", rng: random.Random) -> bytes:
    """`data` (a `desc` message) with its fields sorted by `rank` of their number (new ranks drawn
    from `rng`), sub-messages reordered the same way; same-number fields keep their order."""
    out = []
    parsed = fields(data)
    ranks = {number: rank.get(number, rng.random()) for number, _, _ in parsed}
    for number, wire_type, value in sorted(parsed, key=lambda f: ranks[f[0]]):
        fd = desc.fields_by_number.get(number)
        if wire_type == 2 and fd is not None and fd.type == FieldDescriptor.TYPE_MESSAGE:
            value = reorder(value, fd.message_type, rank, rng)
        body = _encode_varint(len(value)) + value if wire_type == 2 else value
        out.append(_encode_varint(number << 3 | wire_type) + body)
    return b"".join(out)


def quotes(frame: bytes) -> dict[str, dict[str, object]]:
    decoder = FeedDecoder(max_instruments=64)
    decoder.decode(frame, recv_ns=1)
    out = {}
    for key in decoder.store.instruments:
        q = decoder.quote(key)
        out[key] = {f.name: getattr(q, f.name) for f in dataclasses.fields(q)}  # type: ignore[arg-type]
        out[key]["ohlc"] = dict(out[key]["ohlc"])  # type: ignore[call-overload]
    return out


def check(frame: bytes, seed: int) -> None:
    rng = random.Random(seed)
    reversed_ = reorder(frame, pb.FeedResponse.DESCRIPTOR, {n: -n for n in range(1, 64)}, rng)
    shuffled = reorder(frame, pb.FeedResponse.DESCRIPTOR, {}, rng)
    assert pb.FeedResponse.FromString(reversed_) == pb.FeedResponse.FromString(frame)
    assert pb.FeedResponse.FromString(shuffled) == pb.FeedResponse.FromString(frame)
    expected = to_dict(frame)
    assert S.canon(to_dict(reversed_)) == S.canon(expected)
    assert S.canon(to_dict(shuffled)) == S.canon(expected)
    in_order = quotes(frame)
    assert S.canon(quotes(reversed_)) == S.canon(in_order)
    assert S.canon(quotes(shuffled)) == S.canon(in_order)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["initial_feed", "live_feed"]), data=st.data(),
       seed=st.integers(0, 2**32))
def test_fields_in_any_order_decode_as_in_schema_order(kind: str, data: st.DataObject,
                                                       seed: int) -> None:
    mode = data.draw(st.sampled_from([None, *S.MODES]))
    check(data.draw(S.realistic_frame(pb, kind, mode)), seed)


def test_market_info_in_any_order() -> None:
    r = pb.FeedResponse(type=pb.market_info, currentTs=1_764_570_000_000)
    r.marketInfo.segmentStatus["NSE_EQ"] = pb.NORMAL_OPEN
    r.marketInfo.casMarketStatus["NSE_EQ"].status = "CAS_OPEN"
    r.marketInfo.casMarketStatus["NSE_EQ"].updatedTime = 1_764_570_000_000
    for seed in range(20):
        check(r.SerializeToString(), seed)


def test_reordering_really_moves_fields() -> None:
    r = pb.FeedResponse(type=pb.live_feed, currentTs=5)
    q = r.feeds["NSE_EQ|X"].fullFeed.marketFF.marketLevel.bidAskQuote.add()
    q.bidQ, q.bidP, q.askQ, q.askP = 1, 2.0, 3, 4.0
    payload = r.SerializeToString()
    flipped = reorder(payload, pb.FeedResponse.DESCRIPTOR, {n: -n for n in range(1, 64)},
                      random.Random(0))
    assert flipped != payload and sorted(flipped) == sorted(payload)
