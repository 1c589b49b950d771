"""Hypothesis strategies for Market Data Feed v3 frames, as field lists for ``wire.encode``.

Schema-aware but wire-level: each message is a random subset of its fields, sometimes repeated
(scalars: last wins; sub-messages merge; repeated fields append), in shuffled order, with unknown
fields of every wire type and known field numbers sent with the wrong wire type mixed in.
"""
from __future__ import annotations

import functools
import math
import struct

from hypothesis import strategies as st

import wire
from wire import FIXED32, FIXED64, LEN, SGROUP, VARINT

# Kinds of field value.
DOUBLE, INT64, BOOL, ENUM, STRING = "double", "int64", "bool", "enum", "string"

# message name -> {field number: (kind or message name, repeated)}
SCHEMA: dict[str, dict[int, tuple[str, bool]]] = {
    "DoubleValue": {1: (DOUBLE, False)},
    "LTPC": {1: (DOUBLE, False), 2: (INT64, False), 3: (INT64, False), 4: (DOUBLE, False),
             5: ("DoubleValue", False)},
    "Quote": {1: (INT64, False), 2: (DOUBLE, False), 3: (INT64, False), 4: (DOUBLE, False)},
    "OptionGreeks": {n: (DOUBLE, False) for n in range(1, 6)},
    "OHLC": {1: (STRING, False), 2: (DOUBLE, False), 3: (DOUBLE, False), 4: (DOUBLE, False),
             5: (DOUBLE, False), 6: (INT64, False), 7: (INT64, False)},
    "MarketLevel": {1: ("Quote", True)},
    "MarketOHLC": {1: ("OHLC", True)},
    "MarketFullFeed": {1: ("LTPC", False), 2: ("MarketLevel", False), 3: ("OptionGreeks", False),
                       4: ("MarketOHLC", False), 5: (DOUBLE, False), 6: (INT64, False),
                       7: (DOUBLE, False), 8: (DOUBLE, False), 9: (DOUBLE, False),
                       10: (DOUBLE, False), 11: (DOUBLE, False), 12: (DOUBLE, False),
                       13: (INT64, False), 14: (INT64, False), 15: (INT64, False),
                       16: (BOOL, False)},
    "IndexFullFeed": {1: ("LTPC", False), 2: ("MarketOHLC", False)},
    "FullFeed": {1: ("MarketFullFeed", False), 2: ("IndexFullFeed", False)},
    "FirstLevelWithGreeks": {1: ("LTPC", False), 2: ("Quote", False), 3: ("OptionGreeks", False),
                             4: (INT64, False), 5: (DOUBLE, False), 6: (DOUBLE, False)},
    "Feed": {1: ("LTPC", False), 2: ("FullFeed", False), 3: ("FirstLevelWithGreeks", False),
             4: (ENUM, False)},
    "FeedsEntry": {1: (STRING, False), 2: ("Feed", False)},
    "StatusInfo": {1: (STRING, False), 2: (INT64, False)},
    "SegmentStatusEntry": {1: (STRING, False), 2: (ENUM, False)},
    "StatusInfoEntry": {1: (STRING, False), 2: ("StatusInfo", False)},
    "MarketInfo": {1: ("SegmentStatusEntry", True), 2: ("StatusInfoEntry", True),
                   3: ("StatusInfoEntry", True)},
    "FeedResponse": {1: (ENUM, False), 2: ("FeedsEntry", True), 3: (INT64, False),
                     4: ("MarketInfo", False)},
}
ONEOFS = {"Feed": (1, 2, 3), "FullFeed": (1, 2)}
MAP_ENTRIES = {"FeedsEntry", "SegmentStatusEntry", "StatusInfoEntry"}
WIRE_TYPE = {DOUBLE: FIXED64, INT64: VARINT, BOOL: VARINT, ENUM: VARINT, STRING: LEN}
ENUM_RANGE = {("Feed", 4): 4, ("FeedResponse", 1): 3, ("SegmentStatusEntry", 2): 6}

# upb moves a map entry that has unknown fields of its own (or known ones with the wrong wire
# type) out of the map, into the parent's unknown fields. False leaves such noise out of map
# entries (while fastfeed disagreed, so that the rest stayed testable).
ENTRY_NOISE = True
# upb skips fields numbered 0 inside an unknown group (it rejects them anywhere else); see
# test_malformed's hostile inputs. False leaves them out (while fastfeed disagreed).
GROUP_FIELD_ZERO = True

KEYS = ["NSE_EQ|INE002A01018", "NSE_INDEX|Nifty 50", "NSE_FO|43919", "MCX_FO|434855",
        "BSE_EQ|INE467B01029", "NSE_INDEX|Nifty Bank", "GLOBAL_INDICATOR|USDINR", ""]
SEGMENTS = ["NSE_EQ", "NSE_FO", "NSE_INDEX", "NSE_COM", "NCD_FO", "BSE_EQ", "BSE_FO",
            "BSE_INDEX", "BCD_FO", "MCX_FO", "MCX_INDEX"]
INVALID_UTF8 = [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"abc\xe2\x82",
                b"\x80", b"\xf8\x88\x80\x80\x80", b"NSE_EQ|\xc3"]

int64s = st.one_of(
    st.just(0),
    st.integers(-3, 300),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([-1, -(2**63), 2**63 - 1, 2**31, -(2**31), 2**32, 1_700_000_000_000]),
    st.integers(2**63, 2**64 - 1),  # the same varints, written as uint64
)

_special = [0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, -5e-324, 2.2250738585072014e-308,
            1.7976931348623157e308, 1.0, 2500.55]
# Raw bit patterns: NaNs with payloads and signs, the negative zero.
raw_doubles = st.sampled_from([
    b"\x01\x00\x00\x00\x00\x00\xf0\x7f", b"\x00\x00\x00\x00\x00\x00\xf8\xff",
    b"\xff\xff\xff\xff\xff\xff\xff\xff", b"\x00\x00\x00\x00\x00\x00\x00\x80",
])
doubles = st.one_of(
    st.sampled_from(_special),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.floats(0, 100_000).map(lambda x: round(x, 2)),
    raw_doubles,
)


@functools.lru_cache(maxsize=None)
def enums(limit: int):
    return st.one_of(
        st.integers(0, limit - 1),
        st.integers(0, limit - 1),
        st.integers(limit, 300),
        st.integers(-(2**31), 2**31 - 1),
        st.integers(-(2**63), 2**64 - 1),  # past int32: protobuf keeps the low 32 bits
    )


bools = st.one_of(st.sampled_from([0, 1]), st.integers(0, 2**64 - 1), st.integers(-(2**63), -1))
texts = st.one_of(
    st.sampled_from(KEYS),
    st.sampled_from(SEGMENTS + ["1d", "I1", "I30", "NORMAL_OPEN", "PRE_OPEN_END"]),
    st.text(max_size=12),
    st.just(""),
)
invalid_strings = st.sampled_from(INVALID_UTF8)
bad_texts = st.one_of(texts, texts, texts, texts, texts, texts, texts, invalid_strings)

# Strategies are built once: building them inside draws costs more than drawing from them.
_dice = {n: st.integers(0, n - 1) for n in (*range(1, 17), 31)}
_any_u64 = st.integers(-(2**63), 2**64 - 1)
_u64 = st.integers(0, 2**64 - 1)
_b8, _b4 = st.binary(min_size=8, max_size=8), st.binary(min_size=4, max_size=4)
_opaque = st.binary(max_size=12)
_unknown_number = {}
_wire_types = st.sampled_from([VARINT, FIXED64, LEN, FIXED32, SGROUP])
_flat_wire_types = st.sampled_from([VARINT, FIXED64, LEN, FIXED32])
_count_top = st.sampled_from([0, 1, 1, 1, 2, 3])
_count_deep = st.sampled_from([0, 1, 1])
_branches = st.sampled_from([1, 1, 1, 1, 1, 0, 2, 3])
_levels = st.one_of(st.integers(0, 5), st.integers(0, 5), st.integers(0, 30), st.integers(31, 40))
_randoms = st.randoms(use_true_random=False)
_masks = {n: st.integers(0, (1 << n) - 1) for n in range(1, 17)}


def roll(draw, n: int) -> int:
    """A die with n faces, 0 to n-1."""
    return draw(_dice[n])


def _number(min_number: int):
    if min_number not in _unknown_number:
        _unknown_number[min_number] = st.one_of(st.integers(min_number, min_number + 40),
                                                st.integers(min_number, 2**29 - 1))
    return _unknown_number[min_number]


def unknown_field(draw, min_number: int = 1, depth: int = 0):
    """A field the schema does not know, of any wire type (groups may nest)."""
    number = draw(_number(min_number))
    wt = draw(_wire_types if depth < 3 else _flat_wire_types)
    if wt == VARINT:
        return number, wt, draw(_any_u64)
    if wt == FIXED64:
        return number, wt, draw(_b8)
    if wt == FIXED32:
        return number, wt, draw(_b4)
    if wt == LEN:
        return number, wt, draw(_opaque)  # opaque: may be anything, even \xff
    # A group: any field numbers inside, other groups too.
    inner = 0 if GROUP_FIELD_ZERO else 1
    return number, SGROUP, [unknown_field(draw, inner, depth + 1) for _ in range(roll(draw, 4))]


def wrong_wire_type(draw, name: str):
    """A known field number of ``name`` sent with a wire type it does not have."""
    numbers = sorted(SCHEMA[name])
    number = numbers[roll(draw, len(numbers))]
    kind, _ = SCHEMA[name][number]
    right = WIRE_TYPE.get(kind, LEN)
    wrong = [w for w in (VARINT, FIXED64, LEN, FIXED32, SGROUP) if w != right]
    wt = wrong[roll(draw, len(wrong))]
    if wt == VARINT:
        return number, wt, draw(_u64)
    if wt == FIXED64:
        return number, wt, draw(_b8)
    if wt == FIXED32:
        return number, wt, draw(_b4)
    if wt == LEN:
        return number, wt, draw(_opaque)
    inner = 0 if GROUP_FIELD_ZERO else 1
    return number, SGROUP, [unknown_field(draw, inner, 1) for _ in range(roll(draw, 3))]


def _mask(draw, n: int) -> int:
    """n presence bits: all of them a quarter of the time; otherwise a drawn mask, rotated so
    that hypothesis's bias towards small integers does not starve the high field numbers."""
    if roll(draw, 4) == 0:
        return (1 << n) - 1
    m = draw(_masks[n])
    r = roll(draw, n)
    return ((m << r) | (m >> (n - r))) & ((1 << n) - 1)


def _message(draw, name: str, depth: int, bad_utf8: bool, noise: bool):
    schema = SCHEMA[name]
    fields: list = []
    oneof = ONEOFS.get(name, ())
    branches = []
    if oneof:
        # Usually one branch, sometimes none, sometimes two or three in sequence.
        k = draw(_branches)
        branches = [oneof[roll(draw, len(oneof))] for _ in range(k)]
    # Which singular fields are present (one draw, shrinking towards none), and which of those
    # come twice (last wins, or merge).
    singular = [n for n, (_, rep) in schema.items() if not rep and n not in oneof]
    present = _mask(draw, len(singular)) if singular else 0
    twice = draw(_masks[len(singular)]) & present if singular and roll(draw, 4) == 0 else 0
    for number, (kind, repeated) in schema.items():
        if number in oneof:
            count = branches.count(number)
        elif repeated:
            count = draw(_levels) if name == "MarketLevel" else roll(draw, 5 if depth == 0 else 4)
        else:
            bit = 1 << singular.index(number)
            count = (1 if present & bit else 0) + (1 if twice & bit else 0)
        for _ in range(count):
            if kind in SCHEMA:
                fields.append((number, LEN, _message(draw, kind, depth + 1, bad_utf8, noise)))
            elif kind == DOUBLE:
                fields.append((number, FIXED64, draw(doubles)))
            elif kind == INT64:
                fields.append((number, VARINT, draw(int64s)))
            elif kind == BOOL:
                fields.append((number, VARINT, draw(bools)))
            elif kind == ENUM:
                fields.append((number, VARINT, draw(enums(ENUM_RANGE[(name, number)]))))
            else:
                fields.append((number, LEN, draw(bad_texts if bad_utf8 else texts)))
    if name in MAP_ENTRIES and not ENTRY_NOISE:
        noise = False
    if noise and roll(draw, 4) == 0:
        for _ in range(roll(draw, 4)):
            fields.append(unknown_field(draw, max(schema) + 1 if roll(draw, 2) else 1000))
    if noise and roll(draw, 8) == 0:
        for _ in range(1 + roll(draw, 2)):
            fields.append(wrong_wire_type(draw, name))
    if fields and roll(draw, 8) == 0:
        _overlong(draw, fields)
    if roll(draw, 3) == 0:
        draw(_randoms).shuffle(fields)
    return fields


def _overlong(draw, fields):
    """Write one field's tag, or its varint value, with more bytes than it needs."""
    i = roll(draw, len(fields)) if len(fields) in _dice else 0
    number, wt, value, *_ = fields[i]
    if wt == VARINT and roll(draw, 2):
        room = 10 - len(wire.varint(value))
        if room > 0:
            fields[i] = (number, wt, wire.Overlong(value, 1 + roll(draw, min(room, 16))))
            return
    room = 5 - len(wire.tag(number, wt))
    if room > 0:
        fields[i] = (number, wt, value, 1 + roll(draw, room))


@st.composite
def message(draw, name: str, bad_utf8: bool = False, noise: bool = True):
    """A field list for one ``name`` message."""
    return _message(draw, name, 0, bad_utf8, noise)


def frames(bad_utf8: bool = False):
    """A whole FeedResponse, as bytes."""
    return message("FeedResponse", bad_utf8).map(wire.encode)


def frame_fields(bad_utf8: bool = False):
    return message("FeedResponse", bad_utf8)


# --- realistic frames, built with fastfeed's own generated classes --------------------------

MODES = ["ltpc", "full_d5", "option_greeks", "full_d30", "index"]

finite = st.floats(-1e9, 1e9, allow_nan=False).map(lambda x: round(x, 2))
prices = st.floats(0.05, 100_000, allow_nan=False).map(lambda x: round(x, 2))
qty = st.integers(0, 10_000_000)
ms = st.integers(1_600_000_000_000, 1_900_000_000_000)


@st.composite
def ltpc_pb(draw, pb, with_iep: bool | None = None):
    m = pb.LTPC(ltp=draw(prices), ltt=draw(ms), ltq=draw(qty), cp=draw(prices))
    if with_iep if with_iep is not None else draw(st.booleans()):
        m.iep.value = draw(prices)
    return m


@st.composite
def greeks_pb(draw, pb):
    return pb.OptionGreeks(delta=draw(finite), theta=draw(finite), gamma=draw(finite),
                           vega=draw(finite), rho=draw(finite))


@st.composite
def ohlc_pb(draw, pb):
    return [pb.OHLC(interval=i, open=draw(prices), high=draw(prices), low=draw(prices),
                    close=draw(prices), vol=draw(qty), ts=draw(ms))
            for i in draw(st.lists(st.sampled_from(["1d", "I1", "I30"]), max_size=3,
                                   unique=True))]


@st.composite
def quote_pb(draw, pb):
    return pb.Quote(bidQ=draw(qty), bidP=draw(prices), askQ=draw(qty), askP=draw(prices))


@st.composite
def feed_pb(draw, pb, mode: str):
    f = pb.Feed()
    if mode == "ltpc":
        f.ltpc.CopyFrom(draw(ltpc_pb(pb)))
        return f
    if mode == "index":
        f.fullFeed.indexFF.ltpc.CopyFrom(draw(ltpc_pb(pb)))
        f.fullFeed.indexFF.marketOHLC.ohlc.extend(draw(ohlc_pb(pb)))
        f.requestMode = pb.full_d5
        return f
    if mode == "option_greeks":
        g = f.firstLevelWithGreeks
        g.ltpc.CopyFrom(draw(ltpc_pb(pb)))
        g.firstDepth.CopyFrom(draw(quote_pb(pb)))
        g.optionGreeks.CopyFrom(draw(greeks_pb(pb)))
        g.vtt, g.oi, g.iv = draw(qty), draw(prices), draw(finite)
        f.requestMode = pb.option_greeks
        return f
    levels = 5 if mode == "full_d5" else 30
    m = f.fullFeed.marketFF
    m.ltpc.CopyFrom(draw(ltpc_pb(pb)))
    if draw(st.integers(0, 4)):  # a live tick may leave out the depth
        m.marketLevel.bidAskQuote.extend(
            draw(st.lists(quote_pb(pb), min_size=levels, max_size=levels)))
    if draw(st.booleans()):
        m.optionGreeks.CopyFrom(draw(greeks_pb(pb)))
    m.marketOHLC.ohlc.extend(draw(ohlc_pb(pb)))
    m.atp, m.vtt, m.oi, m.iv = draw(prices), draw(qty), draw(prices), draw(finite)
    m.tbq, m.tsq, m.rp = draw(prices), draw(prices), draw(prices)
    if draw(st.booleans()):
        m.iep, m.ieq = draw(prices), draw(qty)
        m.iiqTotal, m.iiqM = draw(st.integers(-10**7, 10**7)), draw(st.integers(-10**7, 10**7))
        m.casEligible = draw(st.booleans())
    f.requestMode = pb.full_d5 if mode == "full_d5" else pb.full_d30
    return f


@st.composite
def realistic_frame(draw, pb, kind: str, mode: str | None = None):
    """kind: "initial_feed", "live_feed" or "market_info"; mode: one of MODES or None (mixed)."""
    r = pb.FeedResponse(type=getattr(pb, kind), currentTs=draw(ms))
    if kind == "market_info":
        for seg in draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, unique=True)):
            r.marketInfo.segmentStatus[seg] = draw(st.integers(0, 5))
        for seg in draw(st.lists(st.sampled_from(SEGMENTS), unique=True)):
            r.marketInfo.casMarketStatus[seg].status = draw(st.sampled_from(["OPEN", "CLOSE"]))
            r.marketInfo.casMarketStatus[seg].updatedTime = draw(ms)
        for seg in draw(st.lists(st.sampled_from(SEGMENTS), unique=True)):
            r.marketInfo.preOpenSessionStatus[seg].status = "PRE_OPEN"
            r.marketInfo.preOpenSessionStatus[seg].updatedTime = draw(ms)
        return r.SerializeToString()
    keys = draw(st.lists(st.sampled_from(KEYS[:-1]) | st.text(min_size=1, max_size=20),
                         min_size=1, max_size=6, unique=True))
    for key in keys:
        r.feeds[key].CopyFrom(draw(feed_pb(pb, mode or draw(st.sampled_from(MODES)))))
    return r.SerializeToString()


def double_bits(x: float) -> bytes:
    return struct.pack("<d", x)


# --- the oracle: what the official SDK (protobuf upb) makes of the bytes --------------------

import os  # noqa: E402

from google.protobuf import message as _pb_message  # noqa: E402
from google.protobuf.json_format import MessageToDict  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from upstox_client.feeder.proto import MarketDataFeedV3_pb2 as SDK  # noqa: E402

# FASTFEED_FUZZ=1: random seeds and ten times the examples, for a longer hunt than CI's.
FUZZ = os.environ.get("FASTFEED_FUZZ", "") not in ("", "0")


def fuzz_settings(max_examples: int):
    return settings(
        max_examples=max_examples * (10 if FUZZ else 1),
        deadline=None,
        derandomize=not FUZZ,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )


def sdk_parse(payload: bytes):
    """The SDK's FeedResponse, or None when protobuf rejects the bytes."""
    try:
        return SDK.FeedResponse.FromString(payload)
    except _pb_message.DecodeError:
        return None


def sdk_dict(payload: bytes):
    msg = sdk_parse(payload)
    return None if msg is None else MessageToDict(msg)


def canon(x):
    """A form in which equal means the same JSON-ish value, type included: 0.0 != -0.0 != 0,
    True != 1."""
    if isinstance(x, dict):
        return {k: canon(v) for k, v in x.items()}
    if isinstance(x, list):
        return [canon(v) for v in x]
    if isinstance(x, float):
        return ("float", struct.pack("<d", x).hex() if not math.isnan(x) else "nan")
    return (type(x).__name__, x)
