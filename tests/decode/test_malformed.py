"""Malformed and hostile frames: fastfeed rejects exactly what protobuf rejects, and a rejected
frame leaves a FeedDecoder exactly as it was (but for its ``errors`` counter)."""
from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastfeed
import strategies as S
import wire
from fastfeed.proto import fastfeed_market_v3_pb2 as pb
from test_differential import check_decoder, check_to_dict
from wire import LEN, SGROUP, dbl, i64, sub

# --- realistic frames, built once ------------------------------------------------------------


def _ltpc(m, i):
    m.ltp, m.ltt, m.ltq, m.cp = 2500.55 + i, 1_740_000_000_000 + i, 25 * i, 2480.1


def _full(feed, levels, i, mode):
    mff = feed.fullFeed.marketFF
    _ltpc(mff.ltpc, i)
    for j in range(levels):
        mff.marketLevel.bidAskQuote.add(bidQ=100 + j, bidP=2500.0 - j * 0.05,
                                        askQ=90 + j, askP=2500.1 + j * 0.05)
    mff.optionGreeks.delta, mff.optionGreeks.theta = 0.51, -12.25
    mff.optionGreeks.gamma, mff.optionGreeks.vega, mff.optionGreeks.rho = 0.0012, 3.5, 0.25
    for interval in ("1d", "I1"):
        mff.marketOHLC.ohlc.add(interval=interval, open=2490.0, high=2510.0, low=2480.5,
                                close=2500.55, vol=123456, ts=1_740_000_000_000)
    mff.atp, mff.vtt, mff.oi, mff.iv = 2499.3, 1_234_567, 15000.0, 0.1825
    mff.tbq, mff.tsq, mff.iep, mff.rp = 125000.0, 98000.0, 2501.0, 2500.0
    mff.ieq, mff.iiqTotal, mff.iiqM, mff.casEligible = 1500, -250, -3, True
    mff.ltpc.iep.value = 2501.5
    feed.requestMode = mode


def base_frames() -> dict[str, bytes]:
    frames = {}
    r = pb.FeedResponse(type=pb.live_feed, currentTs=1_740_000_000_999)
    _full(r.feeds["NSE_EQ|INE002A01018"], 5, 1, pb.full_d5)
    frames["full_d5"] = r.SerializeToString()

    r = pb.FeedResponse(type=pb.initial_feed, currentTs=1_740_000_000_999)
    _full(r.feeds["NSE_FO|43919"], 30, 2, pb.full_d30)
    frames["full_d30"] = r.SerializeToString()

    r = pb.FeedResponse(type=pb.live_feed, currentTs=1_740_000_001_000)
    g = r.feeds["NSE_FO|43919"].firstLevelWithGreeks
    _ltpc(g.ltpc, 3)
    g.firstDepth.bidQ, g.firstDepth.bidP, g.firstDepth.askQ, g.firstDepth.askP = 75, 101.5, 50, 102
    g.optionGreeks.delta, g.optionGreeks.theta, g.optionGreeks.gamma = -0.42, -3.1, 0.002
    g.optionGreeks.vega, g.optionGreeks.rho = 7.7, -0.5
    g.vtt, g.oi, g.iv = 98765, 4500.0, 0.22
    r.feeds["NSE_FO|43919"].requestMode = pb.option_greeks
    frames["option_greeks"] = r.SerializeToString()

    r = pb.FeedResponse(type=pb.live_feed, currentTs=1_740_000_001_001)
    ix = r.feeds["NSE_INDEX|Nifty 50"].fullFeed.indexFF
    _ltpc(ix.ltpc, 4)
    ix.marketOHLC.ohlc.add(interval="1d", open=22000.5, high=22100, low=21950.25, close=22050)
    ix.marketOHLC.ohlc.add(interval="I1", open=22040, high=22055, low=22039, close=22050, ts=17)
    r.feeds["NSE_INDEX|Nifty 50"].requestMode = pb.full_d5
    frames["index"] = r.SerializeToString()

    r = pb.FeedResponse(type=pb.market_info, currentTs=1_740_000_000_000)
    for j, seg in enumerate(S.SEGMENTS):
        r.marketInfo.segmentStatus[seg] = j % 6
    r.marketInfo.casMarketStatus["NSE_EQ"].status = "OPEN"
    r.marketInfo.casMarketStatus["NSE_EQ"].updatedTime = 1_740_000_000_000
    r.marketInfo.preOpenSessionStatus["BSE_EQ"].status = "PRE_OPEN_END"
    r.marketInfo.preOpenSessionStatus["BSE_EQ"].updatedTime = -1
    frames["market_info"] = r.SerializeToString()

    r = pb.FeedResponse(type=pb.live_feed, currentTs=1_740_000_002_000)
    _ltpc(r.feeds["NSE_EQ|INE467B01029"].ltpc, 5)
    _full(r.feeds["NSE_EQ|INE002A01018"], 5, 6, pb.full_d5)
    r.feeds["NSE_INDEX|Nifty Bank"].fullFeed.indexFF.ltpc.ltp = 48000.5
    r.feeds["MCX_FO|434855"].firstLevelWithGreeks.ltpc.ltp = 6100
    r.feeds["MCX_FO|434855"].requestMode = pb.option_greeks
    frames["multi"] = r.SerializeToString()
    return frames


BASES = base_frames()


def snapshot_state(decoder):
    return (decoder.snapshot.tobytes(), decoder.ring.tobytes(), list(decoder.store.instruments),
            len(decoder.store), {k: v for k, v in decoder.stats().items() if k != "errors"},
            dict(decoder.market_status), dict(decoder.cas_market_status),
            dict(decoder.pre_open_status))


def busy_decoder(max_instruments=64):
    """A decoder with some state: snapshots, live ticks and market info applied."""
    decoder = fastfeed.FeedDecoder(max_instruments=max_instruments, ring_capacity=64)
    for name in ("market_info", "full_d30", "multi", "option_greeks", "index"):
        decoder.decode(BASES[name], recv_ns=1)
    return decoder


def check_rejected_changes_nothing(decoder, payload: bytes):
    before = snapshot_state(decoder)
    errors = decoder.errors
    with pytest.raises(fastfeed.DecodeError):
        decoder.decode(payload, recv_ns=99)
    assert decoder.errors == errors + 1
    assert snapshot_state(decoder) == before, payload.hex()


def agree(decoder, payload: bytes):
    """to_dict and decode agree with protobuf; a rejection changes nothing in the decoder."""
    accepted = check_to_dict(payload) is not None
    if accepted:
        check_decoder(decoder, payload)
    else:
        check_rejected_changes_nothing(decoder, payload)


# --- truncation ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BASES))
def test_every_truncation_point(name):
    frame = BASES[name]
    assert S.sdk_parse(frame) is not None
    decoder = busy_decoder()
    rejected = 0
    for n in range(len(frame) + 1):
        payload = frame[:n]
        rejected += S.sdk_parse(payload) is None
        agree(decoder, payload)
    assert 0 < rejected < len(frame)  # some prefixes are valid protobuf, most are not


# --- random mutations ------------------------------------------------------------------------


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(6)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:  # flip one bit
            i = min(i, len(b) - 1)
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # overwrite a byte
            b[min(i, len(b) - 1)] = rng.choice((0, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == 2:  # insert bytes
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.choice((1, 1, 2, 5))))
        elif op == 3 and b:  # delete bytes
            del b[i:i + rng.choice((1, 1, 2, 4))]
        elif op == 4 and b:  # duplicate a slice (repeats fields, or garbles them)
            j = rng.randrange(len(b))
            lo, hi = sorted((i, j))
            b[hi:hi] = b[lo:hi]
        else:  # change a byte by +-1: lengths and tags off by one
            if b:
                i = min(i, len(b) - 1)
                b[i] = (b[i] + rng.choice((-1, 1))) % 256
    return bytes(b)


@pytest.mark.parametrize("name", list(BASES))
def test_random_mutations(name):
    rng = random.Random(f"fastfeed-{name}")
    decoder = busy_decoder()
    accepted = 0
    for _ in range(600):
        payload = mutate(rng, BASES[name])
        accepted += S.sdk_parse(payload) is not None
        agree(decoder, payload)
    assert accepted  # the mutations are not all trivially fatal


@S.fuzz_settings(250)
@given(S.frames(), st.randoms(use_true_random=False))
def test_mutated_generated_frames(payload, rng):
    check_to_dict(mutate(rng, payload))


# --- hostile inputs --------------------------------------------------------------------------


def nested_groups(depth: int, inner=()):
    """depth unknown groups (field 9), one inside the other, written flat (no recursion)."""
    return [(0, wire.RAW, wire.tag(9, SGROUP) * depth + wire.encode(list(inner))
             + wire.tag(9, wire.EGROUP) * depth)]


def deep_path(leaf):
    """FeedResponse > FeedsEntry > Feed > FullFeed > MarketFullFeed > LTPC > DoubleValue > leaf:
    the deepest the schema goes (7 messages, the frame itself included)."""
    return [entry_("k", [sub(2, [sub(1, [sub(1, [(5, LEN, list(leaf))])])])])]


def entry_(key, feed_fields):
    return (2, LEN, [(1, LEN, key), (2, LEN, list(feed_fields))])


def raw(hexstr: str):
    return (0, wire.RAW, bytes.fromhex(hexstr.replace(" ", "")))


HOSTILE = {
    # lengths
    "length 2**31-1": [raw("12 ffffffff07")],
    "length 2**31": [raw("12 8080808008 00")],
    "length 2**32": [raw("12 8080808010 00")],
    "length 2**63": [raw("12 80808080808080808001")],
    "length 2**64-1": [raw("12 ffffffffffffffffff01")],
    "length one past the end": [raw("12 03 0a01")],
    "sub-message longer than its parent": [raw("12 04 12 05 0801 0801")],
    "unknown len past the end": [raw("3a 7f 00")],
    "string length past the end": [raw("12 04 0a 05 6161")],
    # varints
    "10-byte varint": [raw("18 ffffffffffffffffff01")],
    "10-byte varint, last byte 0x7f": [raw("18 ffffffffffffffffff7f")],
    "11-byte varint": [raw("18 ffffffffffffffffffff01")],
    "11-byte varint in an unknown field": [raw("28 8080808080808080808000")],
    "11-byte varint inside a feed": [entry_("a", [raw("20 8080808080808080808001")])],
    "varint cut at the end": [raw("18 ff")],
    "varint cut at a sub-message end": [raw("12 04 0a 00 20 80 01")],
    "fixed64 cut at the end": [raw("31 00000000")],
    "fixed64 cut at a sub-message end": [raw("12 09 12 07 0a 05 09 0000000000 00 00")],
    "fixed32 cut": [raw("2d 0000")],
    # tags
    "field 0 varint": [raw("00 01")],
    "field 0 len": [raw("02 00")],
    "field 0 fixed64": [raw("01 0000000000000000")],
    "field 0 fixed32": [raw("05 00000000")],
    "field 0 start group": [raw("03 04")],
    "field 0 end group": [raw("04")],
    "field 0 inside a feed": [entry_("a", [raw("00 00")])],
    "field 0 inside a group": [raw("4b 00 00 4c")],
    "field 0, overlong tag": [raw("80 00 01")],
    "wire type 6": [raw("0e")],
    "wire type 7": [raw("0f 00")],
    "wire type 6 in a feed": [entry_("a", [raw("0e")])],
    "wire type 7 in a group": [raw("4b 0f 4c")],
    "wire type 7 in a DoubleValue": deep_path([raw("0f")]),
    "end group without start": [raw("0c")],
    "end group without start, known field": [raw("1c")],
    "end group inside a sub-message": [entry_("a", [raw("0c")])],
    "end group of another field": [raw("4b 54")],
    "group never closed": [raw("4b 08 01")],
    "group closed outside its sub-message": [entry_("a", [raw("4b")]), raw("4c")],
    "5-byte tag": [raw("88 80 80 80 00 01")],
    "5-byte tag, largest field": [raw("f8 ff ff ff 0f 01")],
    "5-byte tag over 32 bits": [raw("f8 ff ff ff 1f 01")],
    "6-byte tag": [raw("88 80 80 80 80 00 01")],
    "tag cut": [raw("88 80")],
    "overlong tag for a known field": [raw("9a 80 00 03 0a 01 61")],
    # groups
    "known field as group, never closed": [raw("23 08 01")],
    "empty group": [raw("4b 4c")],
    "group with all wire types": [raw("4b 08 01 11 0000000000000000 1a 01 ff 25 00000000"
                                      " 2b 2c 4c")],
}
for n in (1, 50, 98, 99, 100, 101, 150, 1000):
    HOSTILE[f"{n} nested groups"] = nested_groups(n)
    HOSTILE[f"{n} nested groups in a feed"] = [entry_("a", nested_groups(n))]
for n in (90, 91, 92, 93, 94, 95, 96):
    HOSTILE[f"{n} nested groups in an iep DoubleValue"] = deep_path(nested_groups(n))
HOSTILE["deepest message path"] = deep_path([dbl(1, 1.5)])
HOSTILE["100 000 empty unknown groups"] = [raw("4b4c" * 100_000)]
HOSTILE["a million-byte key"] = [entry_("x" * 1_000_000, [])]


@pytest.mark.parametrize("fields", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile(fields):
    payload = wire.encode(fields)
    agree(busy_decoder(), payload)


def test_hostile_inputs_are_mostly_rejected():
    # Guard against a broken encoder making the list above vacuous.
    rejected = sum(S.sdk_parse(wire.encode(f)) is None for f in HOSTILE.values())
    assert rejected > len(HOSTILE) // 2


# --- state after a rejected frame ------------------------------------------------------------

REJECTED = {
    "truncated full_d30": BASES["full_d30"][:-3],
    "new keys, then garbage": wire.encode([entry_("NEW|1", [sub(1, [dbl(1, 1.0)])]),
                                           entry_("NEW|2", []), raw("0f")]),
    "known keys, then garbage": BASES["multi"] + bytes.fromhex("0e"),
    "market info, then garbage": BASES["market_info"] + bytes.fromhex("12"),
    "invalid utf-8 new key": wire.encode([entry_("NEW|3", []),
                                          (2, LEN, [(1, LEN, b"NEW|\xff")])]),
    "invalid utf-8 interval": wire.encode([entry_("NSE_FO|43919", [sub(2, [sub(1, [
        sub(4, [sub(1, [(1, LEN, b"\xc3(")])])])])])]),
    "invalid utf-8 status": BASES["market_info"] + wire.encode(
        [(4, LEN, [(2, LEN, [(1, LEN, "NSE_EQ"), (2, LEN, [(1, LEN, b"\xff")])])])]),
    "too deep": wire.encode([entry_("NSE_EQ|INE002A01018", [sub(1, [dbl(1, 1.0)])])]
                            + nested_groups(101)),
    "end group alone": BASES["index"] + b"\x0c",
}


@pytest.mark.parametrize("payload", list(REJECTED.values()), ids=list(REJECTED))
def test_rejected_frame_changes_nothing(payload):
    assert S.sdk_parse(payload) is None
    decoder = busy_decoder()
    check_rejected_changes_nothing(decoder, payload)
    # ...and the decoder still works.
    assert decoder.decode(BASES["option_greeks"]) == 1


def test_instrument_limit_keeps_known_keys():
    """Rows run out: the known keys of the frame are applied, the new key is refused and
    counted, and reported once (issue 8, item 4)."""
    decoder = fastfeed.FeedDecoder(max_instruments=4, ring_capacity=16)
    assert decoder.decode(BASES["multi"]) == 4
    known = "NSE_EQ|INE002A01018"
    updates = decoder.quote(known).updates
    full = wire.encode([entry_("NSE_FO|43919", [i64(4, 2)]), entry_(known, [i64(4, 1)])])
    errors = decoder.errors
    assert decoder.decode(full) == 1
    assert decoder.errors == errors
    assert decoder.quote(known).updates == updates + 1
    assert decoder.quote(known).mode == "full"
    assert decoder.quote("NSE_FO|43919") is None and len(decoder.store) == 4
    assert (decoder.rejected_keys, decoder.rejected_updates) == (1, 1)
    assert decoder.take_rejected() == ["NSE_FO|43919"]
    # Refused again: counted, not reported again.
    assert decoder.decode(full) == 1
    assert (decoder.rejected_keys, decoder.rejected_updates) == (1, 2)
    assert decoder.take_rejected() == []
    assert decoder.stats()["rejected_keys"] == 1
    # A malformed frame with a new key is still refused whole.
    check_rejected_changes_nothing(decoder, full + b"\x12\x05\x0a\x03\xff\xfe\xfd")


def test_instrument_limit_fills_the_last_rows_in_entry_order():
    decoder = fastfeed.FeedDecoder(max_instruments=3, ring_capacity=16)
    decoder.decode(wire.encode([entry_("a", []), entry_("b", [])]))
    # One row left; the one new key comes three times: it fits, the last entry wins.
    payload = wire.encode([entry_("c", [i64(4, 1)]), entry_("a", []), entry_("c", [i64(4, 2)]),
                           entry_("c", [i64(4, 3)])])
    assert decoder.decode(payload) == 2
    assert decoder.quote("c").mode == "full_d30"
    assert decoder.rejected_keys == 0
    # Now full: of two new keys neither gets a row; the known key is applied.
    assert decoder.decode(wire.encode([entry_("d", []), entry_("b", [i64(4, 1)]),
                                       entry_("e", []), entry_("d", [])])) == 1
    assert decoder.quote("b").mode == "full"
    assert decoder.take_rejected() == ["d", "e"]
    assert (decoder.rejected_keys, decoder.rejected_updates) == (2, 3)
