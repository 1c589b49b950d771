"""Fuzz harness: fastfeed's market-feed decoder against protobuf's own parser (upb).

For every input: fastfeed and protobuf accept and reject the same bytes; an accepted frame's
``to_dict`` equals ``MessageToDict``; a rejected frame changes none of the decoder's state.
``check(data)`` raises AssertionError on any disagreement; any other exception is a crash.
Run under atheris with ``fuzz/run.sh market`` (see fuzz/README.md).
"""
from __future__ import annotations

import math
import struct
from typing import Any

from google.protobuf import message as pb_message
from google.protobuf.json_format import MessageToDict

import fastfeed
from fastfeed.proto import fastfeed_market_v3_pb2 as pb

# Few rows, so that the over-limit path (new keys past max_instruments) is hit all the time;
# a small ring, so that it wraps.
DECODER = fastfeed.FeedDecoder(max_instruments=8, ring_capacity=16)


def canon(x: Any) -> Any:
    """Equal means the same JSON-ish value, type included: 0.0 != -0.0 != 0, True != 1."""
    if isinstance(x, dict):
        return {k: canon(v) for k, v in x.items()}
    if isinstance(x, list):
        return [canon(v) for v in x]
    if isinstance(x, float):
        return ("float", "nan" if math.isnan(x) else struct.pack("<d", x).hex())
    return (type(x).__name__, x)


def state(decoder: fastfeed.FeedDecoder) -> tuple[Any, ...]:
    """Everything a frame can change, but the errors counter."""
    return (decoder.snapshot.tobytes(), decoder.ring.tobytes(), decoder.store.instruments,
            {k: v for k, v in decoder.stats().items() if k != "errors"},
            dict(decoder.market_status), dict(decoder.cas_market_status),
            dict(decoder.pre_open_status), decoder.rejected_keys)


def check(data: bytes) -> None:
    try:
        msg = pb.FeedResponse.FromString(data)
    except pb_message.DecodeError:
        msg = None
    try:
        got = fastfeed.to_dict(data)
    except fastfeed.DecodeError:
        got = None
    assert (got is None) == (msg is None), f"to_dict and upb disagree on accepting {data.hex()}"
    if msg is not None:
        assert canon(got) == canon(MessageToDict(msg)), data.hex()

    before = state(DECODER)
    errors = DECODER.errors
    try:
        applied = DECODER.decode(data)
    except fastfeed.DecodeError:
        assert msg is None, f"decode rejects what upb accepts: {data.hex()}"
        assert DECODER.errors == errors + 1
        assert state(DECODER) == before, f"a rejected frame changed the decoder: {data.hex()}"
        return
    assert msg is not None, f"decode accepts what upb rejects: {data.hex()}"
    kept = [key for key in msg.feeds if DECODER.store.row(key) >= 0]
    assert applied == len(kept), data.hex()
    for key in kept:
        assert DECODER.quote(key) is not None


def TestOneInput(data: bytes) -> None:  # noqa: N802 (atheris' name)
    check(data)


if __name__ == "__main__":
    import sys

    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
