"""fastfeed's decoder against the official SDK's generated classes (protobuf upb).

``fastfeed.to_dict(p)`` must equal ``MessageToDict(SDK.FeedResponse.FromString(p))`` for every
payload protobuf accepts and raise ``fastfeed.DecodeError`` for every payload it rejects;
``FeedDecoder.decode`` must accept exactly the same bytes.
"""
from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastfeed
import strategies as S
import wire
from fastfeed.proto import fastfeed_market_v3_pb2 as pb
from fastfeed.schema import mode_of
from wire import FIXED32, FIXED64, LEN, SGROUP, VARINT, dbl, i64, sub


def check_to_dict(payload: bytes):
    """to_dict agrees with the SDK on accept/reject, and on the dict when accepted."""
    expected = S.sdk_dict(payload)
    if expected is None:
        with pytest.raises(fastfeed.DecodeError) as info:
            fastfeed.to_dict(payload)
        assert isinstance(info.value, ValueError)
        assert 0 <= info.value.offset <= len(payload) and info.value.reason
        return None
    try:
        got = fastfeed.to_dict(payload)
    except fastfeed.DecodeError as e:
        raise AssertionError(f"fastfeed rejects ({e}) what protobuf accepts: {payload.hex()}")
    assert S.canon(got) == S.canon(expected), (payload.hex(), got, expected)
    return expected


def ltpc_of(feed):
    """The LTPC a Feed carries, whichever branch, or None."""
    which = feed.WhichOneof("FeedUnion")
    if which == "ltpc":
        return feed.ltpc
    if which == "firstLevelWithGreeks":
        body = feed.firstLevelWithGreeks
    elif which == "fullFeed":
        inner = feed.fullFeed.WhichOneof("FullFeedUnion")
        if inner is None:
            return None
        body = getattr(feed.fullFeed, inner)
    else:
        return None
    return body.ltpc if body.HasField("ltpc") else None


def same_double(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)


def check_decoder(decoder, payload: bytes):
    """decode() accepts exactly what protobuf accepts, counts distinct keys, and the quotes show
    the last entry of each key."""
    msg = S.sdk_parse(payload)
    errors = decoder.errors
    if msg is None:
        with pytest.raises(fastfeed.DecodeError):
            decoder.decode(payload)
        assert decoder.errors == errors + 1
        return
    try:
        n = decoder.decode(payload, recv_ns=123)
    except fastfeed.DecodeError as e:
        raise AssertionError(f"decode rejects ({e}) what protobuf accepts: {payload.hex()}")
    assert n == len(msg.feeds), payload.hex()
    assert decoder.errors == errors
    for key, feed in msg.feeds.items():
        q = decoder.quote(key)
        assert q is not None and q.key == key, (key, payload.hex())
        assert q.mode == mode_of(feed.requestMode), (key, payload.hex())
        assert q.server_ts == msg.currentTs and q.recv_ns == 123
        ltpc = ltpc_of(feed)
        if ltpc is not None:
            assert same_double(q.ltp, ltpc.ltp), (key, q.ltp, ltpc.ltp, payload.hex())
            assert same_double(q.cp, ltpc.cp), (key, q.cp, ltpc.cp, payload.hex())
            assert (q.ltt, q.ltq) == (ltpc.ltt, ltpc.ltq), (key, payload.hex())
            if ltpc.HasField("iep"):
                assert q.ltpc_iep is not None and same_double(q.ltpc_iep, ltpc.iep.value)
            else:
                assert q.ltpc_iep is None, (key, payload.hex())


# --- generated frames ----------------------------------------------------------------------


@S.fuzz_settings(400)
@given(S.frames())
def test_to_dict_matches_sdk(payload):
    check_to_dict(payload)


@S.fuzz_settings(150)
@given(S.frames(bad_utf8=True))
def test_to_dict_invalid_utf8_agrees(payload):
    check_to_dict(payload)


@S.fuzz_settings(150)
@given(st.lists(S.frames(bad_utf8=True), min_size=1, max_size=3))
def test_decoder_accepts_what_protobuf_accepts(payloads):
    decoder = fastfeed.FeedDecoder(max_instruments=256, ring_capacity=1024)
    for payload in payloads:
        check_decoder(decoder, payload)


# --- realistic frames built with the generated classes ---------------------------------------

KINDS_MODES = [("live_feed", m) for m in S.MODES] + [("initial_feed", m) for m in S.MODES] + [
    ("live_feed", None), ("initial_feed", None), ("market_info", None)]


@pytest.mark.parametrize(("kind", "mode"), KINDS_MODES)
def test_realistic_frames(kind, mode):
    @S.fuzz_settings(15)
    @given(S.realistic_frame(pb, kind, mode))
    def run(payload):
        check_to_dict(payload)
        check_decoder(fastfeed.FeedDecoder(max_instruments=16, ring_capacity=64), payload)

    run()


def test_our_schema_is_wire_identical_to_the_sdks():
    # Cheap guard for the realistic frames above: they mean the same to both descriptor sets.
    r = pb.FeedResponse(type=pb.live_feed, currentTs=1)
    r.feeds["NSE_FO|43919"].fullFeed.marketFF.ltpc.iep.value = 2.5
    r.feeds["NSE_FO|43919"].fullFeed.marketFF.casEligible = True
    r.marketInfo.preOpenSessionStatus["NSE_EQ"].updatedTime = -5
    data = r.SerializeToString()
    assert S.SDK.FeedResponse.FromString(data).SerializeToString() == data


# --- the cases, one by one -----------------------------------------------------------


def frame(*fields) -> bytes:
    return wire.encode(list(fields))


def entry(key, *feed_fields, raw_key: bytes | None = None):
    fields = [(1, LEN, raw_key if raw_key is not None else key)] if key is not None or raw_key else []
    if feed_fields != (None,):
        fields.append((2, LEN, list(feed_fields)))
    return (2, LEN, fields)


LTPC = [dbl(1, 101.5), i64(2, 1_700_000_000_123), i64(3, -7), dbl(4, -0.0)]

CASES = {
    "empty frame": b"",
    "type only": frame(i64(1, 1)),
    "unknown type": frame(i64(1, 7)),
    "negative type": frame(i64(1, -1)),
    "type past int32": frame(i64(1, (1 << 32) + 2)),
    "negative currentTs": frame(i64(3, -(2**63))),
    "max currentTs": frame(i64(3, 2**63 - 1)),
    "ltpc, every field, negatives": frame(entry("NSE_EQ|INE002A01018", sub(1, LTPC))),
    "iep wrapper": frame(entry("k", sub(1, [(5, LEN, [dbl(1, 2.5)])]))),
    "iep wrapper empty": frame(entry("k", sub(1, [(5, LEN, b"")]))),
    "iep wrapper nan": frame(entry("k", sub(1, [(5, LEN, [(1, FIXED64, b"\x01\0\0\0\0\0\xf8\xff")])]))),
    "iep wrapper -0.0 merged twice": frame(entry("k", sub(1, [(5, LEN, [dbl(1, 3.0)]),
                                                           (5, LEN, [dbl(1, -0.0)])]))),
    "entry missing key": frame(entry(None, sub(1, LTPC))),
    "entry missing value": frame(entry("NSE_FO|43919", None)),
    "entry empty": frame((2, LEN, b"")),
    "entry key twice": frame((2, LEN, [(1, LEN, "a"), (2, LEN, [sub(1, LTPC)]), (1, LEN, "b")])),
    "entry value twice merges": frame((2, LEN, [(1, LEN, "a"), (2, LEN, [sub(1, [dbl(1, 5.0)])]),
                                                (2, LEN, [sub(1, [i64(2, 9)]), i64(4, 2)])])),
    "entry value before key": frame((2, LEN, [(2, LEN, [i64(4, 3)]), (1, LEN, "a")])),
    "repeated key across entries": frame(entry("a", sub(1, LTPC)), entry("b", i64(4, 1)),
                                         entry("a", i64(4, 3))),
    "unknown requestMode": frame(entry("a", i64(4, 9))),
    "negative requestMode": frame(entry("a", i64(4, -3))),
    "oneof ltpc then fullFeed": frame(entry("a", sub(1, LTPC), sub(2, [sub(2, [sub(1, LTPC)])]))),
    "oneof fullFeed then ltpc": frame(entry("a", sub(2, [sub(1, [i64(6, 5)])]), sub(1, [dbl(1, 1.0)]))),
    "oneof greeks then ltpc then greeks": frame(entry(
        "a", sub(3, [i64(4, 5), sub(2, [i64(1, 3)])]), sub(1, LTPC), sub(3, [dbl(6, 0.5)]))),
    "fullFeed marketFF then indexFF": frame(entry("a", sub(2, [sub(1, [i64(6, 5)]),
                                                               sub(2, [sub(1, LTPC)])]))),
    "fullFeed indexFF then marketFF": frame(entry("a", sub(2, [sub(2, [sub(1, LTPC)]),
                                                               sub(1, [dbl(5, 2.0)])]))),
    "fullFeed twice merges": frame(entry("a", sub(2, [sub(1, [sub(2, [sub(1, [i64(1, 1)])])])]),
                                         sub(2, [sub(1, [sub(2, [sub(1, [i64(1, 2)])])])]))),
    "empty fullFeed": frame(entry("a", sub(2, []))),
    "empty marketFF": frame(entry("a", sub(2, [sub(1, [])]))),
    "empty marketLevel": frame(entry("a", sub(2, [sub(1, [sub(2, [])])]))),
    "empty marketOHLC": frame(entry("a", sub(2, [sub(2, [sub(2, [])])]))),
    "empty OHLC bar": frame(entry("a", sub(2, [sub(2, [sub(2, [sub(1, [])])])]))),
    "casEligible big varint": frame(entry("a", sub(2, [sub(1, [i64(16, 1 << 40)])]))),
    "casEligible twice, last false": frame(entry("a", sub(2, [sub(1, [i64(16, 1), i64(16, 0)])]))),
    "doubles: special values": frame(entry("a", sub(2, [sub(1, [
        dbl(5, math.nan), dbl(7, math.inf), dbl(8, -math.inf), dbl(9, 5e-324), dbl(10, -0.0),
        dbl(11, 0.0), dbl(12, 1.7976931348623157e308)])]))),
    "int64: edges": frame(entry("a", sub(2, [sub(1, [
        i64(6, -1), i64(13, -(2**63)), i64(14, 2**63 - 1), i64(15, 2**64 - 1)])]))),
    "overlong varint": frame(entry("a", sub(1, [(0, wire.RAW, b"\x10\x85\x80\x80\x80\x80\x80\x80\x80\x80\x00")]))),
    "10-byte varint with high bits": frame(i64(1, 1), (0, wire.RAW, b"\x18" + b"\xff" * 9 + b"\x7f")),
    "fields out of order": frame(i64(3, 5), entry("a", i64(4, 1), sub(1, [i64(3, 4), dbl(1, 2.0)])),
                                 i64(1, 1)),
    "wrong wire types for known fields": frame(
        (1, FIXED64, 1.0), (2, VARINT, 5), (3, LEN, b"xy"), (4, FIXED32, 1),
        entry("a", (1, FIXED32, 3), (4, LEN, b""), sub(1, [(1, VARINT, 3), (2, FIXED64, 1)]))),
    "known message field as group": frame((4, SGROUP, [(1, VARINT, 1)]), entry("a", (1, SGROUP, []))),
    "unknown fields of every wire type": frame(
        (5, VARINT, -1), (6, FIXED64, 2.0), (7, LEN, b"\xff\xfe"), (8, FIXED32, 7),
        (9, SGROUP, [(1, VARINT, 1), (2, SGROUP, [(3, LEN, b"x")]), (2, FIXED64, 0)]),
        ((1 << 29) - 1, VARINT, 1), entry("a", sub(2, [(3, LEN, b""), sub(1, [(99, SGROUP, [])])]))),
    "market info, three maps": frame(i64(1, 2), (4, LEN, [
        (1, LEN, [(1, LEN, "NSE_EQ"), i64(2, 2)]), (1, LEN, [(1, LEN, "NSE_FO")]),
        (1, LEN, [i64(2, 4)]), (1, LEN, [(1, LEN, "NSE_EQ"), i64(2, 3)]),
        (1, LEN, [(1, LEN, "MCX_FO"), i64(2, 17)]), (1, LEN, [(1, LEN, "BSE_EQ"), i64(2, -2)]),
        (2, LEN, [(1, LEN, "NSE_EQ"), (2, LEN, [(1, LEN, "OPEN"), i64(2, 5)])]),
        (2, LEN, [(1, LEN, "NSE_EQ"), (2, LEN, [i64(2, 6)])]),
        (2, LEN, [(1, LEN, "x")]), (3, LEN, []), (3, LEN, [(2, LEN, [])]),
        (3, LEN, [(1, LEN, "y"), (2, LEN, [(1, LEN, "A")]), (2, LEN, [i64(2, -1)])]),
    ])),
    "market info empty": frame((4, LEN, b"")),
    "market info twice merges": frame((4, LEN, [(1, LEN, [(1, LEN, "A"), i64(2, 1)])]),
                                      (4, LEN, [(1, LEN, [(1, LEN, "B"), i64(2, 2)])])),
    "string: empty interval, unicode key": frame(entry("NSE_INDEX|Nifty 50 \u20b9\U0001f600", sub(
        2, [sub(2, [sub(2, [sub(1, [(1, LEN, "")]), sub(1, [(1, LEN, "1d"), dbl(2, 1.0)])])])]))),
    "invalid utf-8 key": frame(entry(None, raw_key=b"NSE\xff")),
    "invalid utf-8 key overwritten": frame((2, LEN, [(1, LEN, b"\xc0\x80"), (1, LEN, "ok")])),
    "invalid utf-8 interval": frame(entry("a", sub(2, [sub(2, [sub(2, [sub(1, [(1, LEN, b"\xed\xa0\x80")])])])]))),
    "invalid utf-8 status": frame((4, LEN, [(2, LEN, [(1, LEN, "k"), (2, LEN, [(1, LEN, b"\xf4\x90\x80\x80")])])])),
    "invalid utf-8 segment key": frame((4, LEN, [(1, LEN, [(1, LEN, b"\xe0\x80\x80")])])),
    "invalid utf-8 in unknown field is fine": frame((9, LEN, b"\xff"), entry("a", (9, LEN, b"\xff"))),
}


@pytest.mark.parametrize("payload", list(CASES.values()), ids=list(CASES))
def test_case(payload):
    check_to_dict(payload)
    check_decoder(fastfeed.FeedDecoder(max_instruments=8, ring_capacity=16), payload)


@pytest.mark.parametrize("levels", range(0, 41))
def test_depth_levels(levels):
    quotes = [sub(1, [i64(1, 10 * i), dbl(2, 100.0 - i), i64(3, -i), dbl(4, 100.5 + i)])
              for i in range(levels)]
    payload = frame(i64(1, 1), entry("NSE_FO|43919", sub(2, [sub(1, [sub(2, quotes), i64(6, 1)])]),
                                     i64(4, 3)))
    assert len(check_to_dict(payload)["feeds"]["NSE_FO|43919"]["fullFeed"]["marketFF"]
               .get("marketLevel", {}).get("bidAskQuote", [])) == levels
    check_decoder(fastfeed.FeedDecoder(max_instruments=8, ring_capacity=16), payload)


def test_market_level_split_in_two_appends():
    half = [sub(1, [i64(1, i)]) for i in range(3)]
    payload = frame(entry("a", sub(2, [sub(1, [sub(2, half), dbl(5, 1.0), sub(2, half)])])))
    assert len(check_to_dict(payload)["feeds"]["a"]["fullFeed"]["marketFF"]["marketLevel"]
               ["bidAskQuote"]) == 6


# --- map entries with fields of their own that the schema does not know ----------------------
# upb decodes such an entry, finds it has unknown fields, and moves the whole entry to the
# parent's unknown fields: the key is NOT in the map. (A known field with the wrong wire type
# counts as unknown, too.)

ENTRY_NOISE_CASES = {
    "feeds entry with unknown varint": "12050a01611801",
    "feeds entry with only an unknown field": "12021801",
    "feeds entry key as fixed32": "1207 0d00000000 1200".replace(" ", ""),
    "segment entry with unknown field": "2209 0a07 0a014e 1002 2801".replace(" ", ""),
    "status entry with unknown group": "2209 1207 0a014e 1200 1b1c".replace(" ", ""),
}


@pytest.mark.parametrize("hexpayload", list(ENTRY_NOISE_CASES.values()),
                         ids=list(ENTRY_NOISE_CASES))
def test_map_entry_with_unknown_fields(hexpayload):
    payload = bytes.fromhex(hexpayload)
    assert S.sdk_parse(payload) is not None
    check_to_dict(payload)
    check_decoder(fastfeed.FeedDecoder(max_instruments=8, ring_capacity=16), payload)
