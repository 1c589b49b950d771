"""Varints of every length (1 to 10 bytes, each at its boundary values and negative), in every
position the reader treats apart: the frame's last field (currentTs, fewer than eight bytes
left), a sub-message's last field, and a field with more bytes after it. Each frame goes through
fastfeed's decoder and to_dict, and both must agree with protobuf's own parser; every cut of
such a frame must be refused by both, or accepted by both with the same result."""
from __future__ import annotations

import pytest

import fastfeed
import strategies as S
from fastfeed import FeedDecoder
from fastfeed.proto import fastfeed_market_v3_pb2 as pb

KEY = "NSE_FO|40000"


def values() -> list[int]:
    out = {0, 1, -1, -(1 << 63), (1 << 63) - 1}
    for k in range(1, 10):
        out |= {(1 << (7 * k)) - 1, 1 << (7 * k), (1 << (7 * k)) + 1}
    return sorted(v for v in out if -(1 << 63) <= v < (1 << 63))


def frame(v: int, where: str) -> bytes:
    r = pb.FeedResponse(type=1)
    m = r.feeds[KEY].fullFeed.marketFF
    m.ltpc.ltp = 1.5
    if where == "current_ts":          # the frame's last field
        r.currentTs = v
    elif where == "ltq":               # LTPC's last field but cp... set cp=0: ltq ends it
        m.ltpc.ltq = v
    elif where == "vtt":               # followed by oi, iv, tbq: more bytes after it
        m.vtt = v
        m.oi = 7.0
        m.iv = 0.5
    elif where == "bar_vol":           # a bar's vol, followed by ts
        bar = m.marketOHLC.ohlc.add(interval="1d", open=1.0, high=2.0, low=0.5, close=1.5)
        bar.vol = v
        bar.ts = 1796142600000
    return r.SerializeToString()


def expected(payload: bytes, where: str) -> int:
    r = pb.FeedResponse.FromString(payload)
    m = r.feeds[KEY].fullFeed.marketFF
    return {"current_ts": r.currentTs, "ltq": m.ltpc.ltq, "vtt": m.vtt,
            "bar_vol": m.marketOHLC.ohlc[0].vol if m.marketOHLC.ohlc else 0}[where]


@pytest.mark.parametrize("where", ["current_ts", "ltq", "vtt", "bar_vol"])
def test_every_varint_length_decodes_as_protobuf_does(where: str) -> None:
    for v in values():
        payload = frame(v, where)
        dec = FeedDecoder(16, 16)
        assert dec.decode(payload) == 1
        q = dec.quote(KEY)
        got = {"current_ts": q.server_ts, "ltq": q.ltq, "vtt": q.vtt,
               "bar_vol": q.ohlc["1d"].vol if q.ohlc else 0}[where]
        assert got == expected(payload, where), (where, v, payload.hex())
        assert S.canon(fastfeed.to_dict(payload)) == S.canon(S.sdk_dict(payload))


def judged_as_protobuf(payload: bytes) -> int | None:
    """The decoder and to_dict refuse what protobuf refuses (the decoder keeping no row), and
    agree with it on what it takes; the updates the decoder applied, or None if refused."""
    want = S.sdk_dict(payload)
    dec = FeedDecoder(16, 16)
    if want is None:
        with pytest.raises(fastfeed.DecodeError):
            dec.decode(payload)
        with pytest.raises(fastfeed.DecodeError):
            fastfeed.to_dict(payload)
        assert len(dec.store) == 0
        return None
    applied = dec.decode(payload)
    assert S.canon(fastfeed.to_dict(payload)) == S.canon(want), payload.hex()
    return applied


@pytest.mark.parametrize("where", ["current_ts", "vtt"])
def test_every_cut_of_a_long_varint_is_judged_as_protobuf_judges_it(where: str) -> None:
    for v in (1 << 35, -1, (1 << 63) - 1):
        payload = frame(v, where)
        for cut in range(len(payload)):
            judged_as_protobuf(payload[:cut])


def _nested_frame(bar: bytes, ltpc: bytes, after_bar: bytes = b"",
                  after_ltpc: bytes = b"") -> bytes:
    # FeedResponse{type, feeds{KEY: Feed{fullFeed{marketFF{ltpc, marketOHLC{ohlc: bar}, vtt}}}},
    # currentTs}, with the bar's and the LTPC's bodies given as bytes (cut or not), and bytes
    # written into their parents right after them.
    from wire import FIXED64, LEN, VARINT, encode

    ohlc = encode([(1, LEN, bar)]) + after_bar
    market_ff = (encode([(1, LEN, ltpc)]) + after_ltpc
                 + encode([(4, LEN, ohlc), (6, VARINT, 2526924), (7, FIXED64, 243187.0)]))
    feed = encode([(2, LEN, encode([(1, LEN, market_ff)]))])
    return encode([(1, VARINT, 1), (2, LEN, encode([(1, LEN, KEY), (2, LEN, feed)])),
                   (3, VARINT, 1796142631240)])


@pytest.mark.parametrize("value", [300, 1 << 35, 1796142600000, -1])
def test_a_varint_cut_by_its_sub_message_end_is_refused_as_protobuf_refuses_it(value: int) -> None:
    # The word-at-a-time read may not take the bytes after a sub-message's end as the rest of
    # a varint: the message's last field (a bar's ts, an LTPC's ltt) is cut at every byte, and
    # the bytes cut off follow the sub-message in its parent, where a read past the end would
    # find them and go on as if the varint were whole.
    from wire import FIXED64, LEN, VARINT, encode

    bar_head = encode([(1, LEN, b"1d"), (2, FIXED64, 1.0), (6, VARINT, 1250654)])
    ltpc_head = encode([(1, FIXED64, 1227.92)])
    bar_field, ltpc_field = encode([(7, VARINT, value)]), encode([(2, VARINT, value)])
    for cut in range(1, len(bar_field) - 1):
        bar_in, bar_out = bar_field[:-cut], bar_field[-cut:]
        ltpc_in, ltpc_out = ltpc_field[:-cut], ltpc_field[-cut:]
        for payload in (
                _nested_frame(bar_head + bar_in, ltpc_head + ltpc_field, after_bar=bar_out),
                _nested_frame(bar_head + bar_field, ltpc_head + ltpc_in, after_ltpc=ltpc_out)):
            assert judged_as_protobuf(payload) in (None, 1), (value, cut)
    # And whole, every field where protobuf puts it.
    payload = _nested_frame(bar_head + bar_field, ltpc_head + ltpc_field)
    q = FeedDecoder(16, 16)
    q.decode(payload)
    quote = q.quote(KEY)
    parsed = pb.FeedResponse.FromString(payload).feeds[KEY].fullFeed.marketFF
    assert quote.ltt == parsed.ltpc.ltt and quote.vtt == parsed.vtt
    assert quote.ohlc["1d"].ts == parsed.marketOHLC.ohlc[0].ts
