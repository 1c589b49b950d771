"""Portfolio Stream Feed frames to typed records: the documented examples, the simulator's frames,
nulls, ints for floats, deprecated duplicates, unknown keys, and every way a frame can be wrong."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from fastfeed.errors import FastfeedError, PortfolioDecodeError
from fastfeed.portfolio import (
    IST,
    REQUIRED,
    GttRule,
    GttUpdate,
    HoldingUpdate,
    OrderUpdate,
    PositionUpdate,
    decode_update,
    scrub,
)
from fastfeed.sim.portfolio import PortfolioBook as SimBook
from fastfeed.sim.prices import Market
from fastfeed.tokens import fingerprint

# Copied from docs/upstox-feeds.md section 2, as documented.
DOC = {
    "order": '{"update_type":"order","user_id":"...","exchange":"NSE","instrument_token":"NSE_EQ|INE848E01016","instrument_key":"NSE_EQ|INE848E01016","trading_symbol":"NHPC-EQ","product":"D","order_type":"MARKET","average_price":0,"price":0,"trigger_price":0,"quantity":1,"disclosed_quantity":0,"pending_quantity":1,"transaction_type":"BUY","order_ref_id":"57744821658411","exchange_order_id":"","parent_order_id":null,"validity":"DAY","status":"put order req received","is_amo":false,"variety":"SIMPLE","tag":null,"exchange_timestamp":null,"status_message":"","order_id":"240221025997024","order_request_id":"1","order_timestamp":"2024-02-21 14:40:02","filled_quantity":0,"guid":null,"placed_by":"...","status_message_raw":null}',  # noqa: E501
    "position": '{"update_type":"position","instrument_token":"NSE_EQ|INE848E01016","instrument_key":"NSE_EQ|INE848E01016","average_price":0,"buy_value":185.85,"overnight_quantity":0,"exchange":"NSE_EQ","day_buy_value":185.85,"day_buy_price":92.92,"overnight_buy_amount":0,"overnight_buy_quantity":0,"day_buy_quantity":2,"day_sell_value":0,"day_sell_price":0,"overnight_sell_amount":0,"overnight_sell_quantity":0,"day_sell_quantity":0,"multiplier":1,"quantity":2,"product":"D","sell_value":0,"buy_price":92.925,"sell_price":0}',  # noqa: E501
    "holding": '{"update_type":"holding","instrument_token":"NSE_EQ|INE848E01016","instrument_key":"NSE_EQ|INE848E01016","average_price":89.22,"isin":"INE848E01016","cnc_used_quantity":0,"collateral_quantity":0,"collateral_type":"WC","collateral_update_quantity":0,"company_name":"NHPC LTD","haircut":0.21,"product":"D","quantity":3,"t1_quantity":0,"exchange":"NSE"}',  # noqa: E501
    "gtt_order": '{"update_type":"gtt_order","type":"MULTIPLE","exchange":"NSE_EQ","instrument_token":"NSE_EQ|INE806A01020","quantity":1,"product":"D","gtt_order_id":"GTT-CU25270200024002","expires_at":1772216999000000,"created_at":1740641185000000,"rules":[{"strategy":"ENTRY","status":"FAILED","trigger_type":"IMMEDIATE","trigger_price":7.7,"transaction_type":"BUY","message":"...","order_id":"250228010168535","trailing_gap":null}]}',  # noqa: E501
}
TYPES = {"order": OrderUpdate, "position": PositionUpdate, "holding": HoldingUpdate,
         "gtt_order": GttUpdate}
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTSU0xMjMifQ.c2lnbmF0dXJl"


def sim_updates(steps: int = 400, seed: int = 7) -> list[dict]:
    book = SimBook(Market(seed), seed)
    return [u for _ in range(steps) for u in book.step()]


def frame(_update_type: str, /, **changes) -> str:
    """The documented example with keys changed (or dropped: `key=...`)."""
    obj = json.loads(DOC[_update_type])
    for key, value in changes.items():
        if value is ...:
            obj.pop(key)
        else:
            obj[key] = value
    return json.dumps(obj)


def assert_matches(record, obj: dict) -> None:
    """Every declared field equals the JSON value (None when absent), ints stay ints and JSON
    numbers in float fields become floats; the keys the type does not declare are `extra`."""
    wire = json.loads(msgspec.json.encode(record))  # the record under its wire names
    fields = msgspec.structs.fields(type(record))
    for f in fields:
        value = getattr(record, f.name)
        if f.encode_name not in obj:
            assert value is None or f.name in ("user_id", "trading_symbol"), f.name
            continue
        assert wire[f.encode_name] == obj[f.encode_name], f.encode_name
        if type(obj[f.encode_name]) in (int, float):
            assert type(value) is (int if "int" in str(f.type) else float), f.name
    known = {f.encode_name for f in fields} | {"update_type"}
    assert record.extra == {k: v for k, v in obj.items() if k not in known}


# -- the documented examples --------------------------------------------------------------------
@pytest.mark.parametrize("update_type", list(DOC))
def test_documented_examples_decode_to_their_record(update_type: str) -> None:
    record = decode_update(DOC[update_type])
    assert type(record) is TYPES[update_type]
    assert record.update_type == update_type
    assert_matches(record, json.loads(DOC[update_type]))
    assert record.extra == {}
    assert record.raw == DOC[update_type]
    assert decode_update(DOC[update_type].encode()) == record


def test_order_example_fields_and_types() -> None:
    o = decode_update(DOC["order"])
    assert (o.order_id, o.status, o.instrument_token) == (
        "240221025997024", "put order req received", "NSE_EQ|INE848E01016")
    assert o.trading_symbol == "NHPC-EQ" and o.tradingsymbol is None
    assert o.quantity == 1 and o.pending_quantity == 1 and o.filled_quantity == 0
    for name in ("average_price", "price", "trigger_price"):
        value = getattr(o, name)
        assert type(value) is float and value == 0.0  # JSON 0 into a float field
    assert o.is_amo is False
    assert o.parent_order_id is None and o.tag is None and o.guid is None
    assert o.status_message_raw is None and o.exchange_order_id == ""


def test_order_times_are_ist_aware_as_given_and_raw_stays() -> None:
    o = decode_update(frame("order", exchange_timestamp="2024-02-21 14:40:03"))
    assert o.order_timestamp == datetime(2024, 2, 21, 14, 40, 2, tzinfo=IST)
    assert o.order_timestamp.utcoffset() == timedelta(hours=5, minutes=30)
    assert o.order_timestamp.astimezone(timezone.utc) == datetime(2024, 2, 21, 9, 10, 2,
                                                                  tzinfo=timezone.utc)
    assert o.order_timestamp_raw == "2024-02-21 14:40:02"
    assert o.exchange_timestamp == datetime(2024, 2, 21, 14, 40, 3, tzinfo=IST)
    assert o.exchange_timestamp_raw == "2024-02-21 14:40:03"
    assert o.order_timestamp is o.order_timestamp  # parsed once, cached


def test_null_and_absent_order_times_are_none() -> None:
    o = decode_update(DOC["order"])
    assert o.exchange_timestamp is None and o.exchange_timestamp_raw is None
    o = decode_update(frame("order", order_timestamp=...))
    assert o.order_timestamp is None and o.order_timestamp_raw is None


def test_an_order_time_with_an_offset_is_honoured() -> None:
    o = decode_update(frame("order", order_timestamp="2024-02-21T09:10:02+00:00"))
    assert o.order_timestamp == datetime(2024, 2, 21, 14, 40, 2, tzinfo=IST)
    assert o.order_timestamp.tzinfo is IST


def test_an_unknown_time_format_is_not_fatal() -> None:
    o = decode_update(frame("order", order_timestamp="21/02/2024 2:40 PM"))
    assert o.order_timestamp is None
    assert o.order_timestamp_raw == "21/02/2024 2:40 PM"


def test_gtt_example_rules_and_microsecond_times() -> None:
    g = decode_update(DOC["gtt_order"])
    assert g.gtt_order_id == "GTT-CU25270200024002" and g.type == "MULTIPLE"
    assert isinstance(g.rules, tuple) and len(g.rules) == 1
    rule = g.rules[0]
    assert type(rule) is GttRule
    assert (rule.strategy, rule.status, rule.trigger_type, rule.transaction_type) == (
        "ENTRY", "FAILED", "IMMEDIATE", "BUY")
    assert rule.trigger_price == 7.7 and rule.order_id == "250228010168535"
    assert rule.trailing_gap is None and rule.extra == {}
    assert g.expires_at == 1772216999000000 and g.created_at == 1740641185000000
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert g.expires_datetime == epoch + timedelta(microseconds=1772216999000000)
    assert g.created_datetime == datetime(2025, 2, 27, 7, 26, 25, tzinfo=timezone.utc)
    odd = decode_update(frame("gtt_order", created_at=1740641185123457, expires_at=None))
    assert odd.created_datetime.microsecond == 123457  # exact, no float rounding
    assert odd.expires_at is None and odd.expires_datetime is None


def test_int_for_float_everywhere() -> None:
    p = decode_update(DOC["position"])
    for name in ("average_price", "day_sell_value", "sell_value", "sell_price", "multiplier",
                 "overnight_buy_amount"):
        assert type(getattr(p, name)) is float, name
    assert p.buy_price == 92.925 and p.quantity == 2 and type(p.quantity) is int
    h = decode_update(frame("holding", haircut=0, average_price=89))
    assert type(h.haircut) is float and type(h.average_price) is float
    g = decode_update(frame("gtt_order", rules=[{"trigger_price": 8, "trailing_gap": 1}]))
    assert type(g.rules[0].trigger_price) is float and type(g.rules[0].trailing_gap) is float


def test_nulls_decode_as_none_for_every_optional_field() -> None:
    for update_type, cls in TYPES.items():
        obj = json.loads(DOC[update_type])
        required = set(REQUIRED[update_type])
        nulled = {k: (v if k in required or k == "update_type" else None) for k, v in obj.items()}
        record = decode_update(json.dumps(nulled))
        for f in msgspec.structs.fields(cls):
            if f.encode_name not in required:
                assert getattr(record, f.name) is None, (update_type, f.name)


def test_sparse_frames_need_only_the_required_fields() -> None:
    o = decode_update('{"update_type":"order","order_id":"1","status":"open",'
                      '"instrument_token":"NSE_EQ|X"}')
    assert o.quantity is None and o.user_id is None and o.order_timestamp is None
    p = decode_update('{"update_type":"position","instrument_token":"NSE_EQ|X","quantity":-3}')
    assert p.quantity == -3 and p.product is None
    g = decode_update('{"rules":[],"gtt_order_id":"G1","update_type":"gtt_order"}')  # tag not first
    assert g.rules == () and g.instrument_token is None


def test_deprecated_duplicates_are_accepted_and_mapped() -> None:
    only_old = frame("order", user_id=..., trading_symbol=..., userId="AB1234",
                     tradingsymbol="NHPC-EQ")
    o = decode_update(only_old)
    assert o.user_id == "AB1234" and o.userId == "AB1234"
    assert o.trading_symbol == "NHPC-EQ" and o.tradingsymbol == "NHPC-EQ"
    assert o.extra == {}
    both = decode_update(frame("order", user_id="NEW1", userId="OLD1", tradingsymbol="OLD-EQ"))
    assert both.user_id == "NEW1" and both.userId == "OLD1"  # the documented name wins
    assert both.trading_symbol == "NHPC-EQ" and both.tradingsymbol == "OLD-EQ"


def test_unknown_fields_are_kept_reachable() -> None:
    o = decode_update(frame("order", new_field={"a": [1, 2]}, another=None))
    assert o.extra == {"new_field": {"a": [1, 2]}, "another": None}
    assert o.extra is o.extra  # parsed once
    with pytest.raises(TypeError):
        o.extra["another"] = 1  # type: ignore[index]
    rules = [{"strategy": "ENTRY", "fresh": 1}, {"strategy": "TARGET"},
             {"strategy": "STOPLOSS", "z": "q"}]
    g = decode_update(frame("gtt_order", note="x", rules=rules))
    assert g.extra == {"note": "x"}
    assert [r.extra for r in g.rules] == [{"fresh": 1}, {}, {"z": "q"}]
    assert g.rules[2].raw is g.raw


def test_records_built_by_hand_have_no_extra_or_raw() -> None:
    h = HoldingUpdate(instrument_token="NSE_EQ|X", quantity=1)
    assert h.extra == {} and h.raw is None and h.update_type == "holding"


def test_records_are_immutable() -> None:
    o = decode_update(DOC["order"])
    with pytest.raises(AttributeError):
        o.status = "complete"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        o.rules = ()  # type: ignore[attr-defined]
    g = decode_update(DOC["gtt_order"])
    with pytest.raises(AttributeError):
        g.rules[0].status = "PENDING"  # type: ignore[misc]
    with pytest.raises(TypeError):
        g.rules[0] = g.rules[0]  # type: ignore[index]


def test_buffers_are_copied_not_kept() -> None:
    buf = bytearray(DOC["holding"].encode())
    h = decode_update(memoryview(buf))
    buf[:] = b" " * len(buf)  # the transport reuses its buffer
    assert h.raw == DOC["holding"].encode() and h.extra == {}


@pytest.mark.parametrize("update_type", list(DOC))
def test_records_encode_back_to_the_wire_names(update_type: str) -> None:
    record = decode_update(DOC[update_type])
    again = msgspec.json.decode(msgspec.json.encode(record), type=TYPES[update_type])
    assert again == record
    assert set(json.loads(msgspec.json.encode(record))) >= set(json.loads(DOC[update_type]))


# -- the simulator's frames ---------------------------------------------------------------------
def test_every_simulator_frame_decodes_and_matches_its_json() -> None:
    updates = sim_updates(250)
    seen = set()
    for obj in updates:
        raw = json.dumps(obj).encode()
        record = decode_update(raw)
        assert type(record) is TYPES[obj["update_type"]]
        assert_matches(record, obj)
        seen.add(obj["update_type"])
        if isinstance(record, OrderUpdate):
            assert record.order_timestamp.tzinfo is IST
            assert record.order_timestamp.strftime("%Y-%m-%d %H:%M:%S") == obj["order_timestamp"]
        if isinstance(record, GttUpdate):
            assert record.created_datetime.timestamp() * 1e6 == pytest.approx(obj["created_at"])
            assert all(r.extra == {} for r in record.rules)
    assert seen == set(TYPES)


def test_simulator_oversized_frame_keeps_its_padding_as_extra() -> None:
    order = next(u for u in sim_updates(50) if u["update_type"] == "order")
    raw = json.dumps(order | {"oversized_padding": [order] * 200})
    record = decode_update(raw)
    assert record.order_id == order["order_id"]
    assert record.extra["oversized_padding"][199] == order


# -- frames that are wrong ----------------------------------------------------------------------
BAD = {
    "empty": ("", "json"),
    "truncated": (DOC["order"][:-1], "json"),  # what the simulator's malformed fault sends
    "not utf-8": (b'{"update_type":"order\xff"}', "json"),
    "not an object": ("[1, 2]", "type"),
    "a string": ('"order"', "type"),
    "no update_type": ('{"order_id":"1"}', "update_type"),
    "unknown update_type": (frame("order", update_type="margin"), "update_type"),
    "update_type not a string": (frame("order", update_type=1), "update_type"),
    "quantity as text": (frame("order", quantity="1"), "type"),
    "quantity fractional": (frame("position", quantity=1.5), "type"),
    "price as text": (frame("order", price="12.5"), "type"),
    "is_amo as text": (frame("order", is_amo="no"), "type"),
    "order_id a number": (frame("order", order_id=240221025997024), "type"),
    "rules not a list": (frame("gtt_order", rules={"strategy": "ENTRY"}), "type"),
    "rule not an object": (frame("gtt_order", rules=["ENTRY"]), "type"),
    "required null": (frame("holding", quantity=None), "type"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_frames_raise_portfolio_decode_error(case: str) -> None:
    raw, kind = BAD[case]
    with pytest.raises(PortfolioDecodeError) as info:
        decode_update(raw)
    err = info.value
    assert isinstance(err, FastfeedError) and isinstance(err, ValueError)
    assert err.kind == kind, err
    assert err.__context__ is None and err.__cause__ is None  # msgspec's error is not chained


@pytest.mark.parametrize("update_type,field", [(t, f) for t in DOC for f in REQUIRED[t]])
def test_each_missing_required_field_raises(update_type: str, field: str) -> None:
    with pytest.raises(PortfolioDecodeError) as info:
        decode_update(frame(update_type, **{field: ...}))
    assert info.value.kind == "missing"
    assert f"`{field}`" in info.value.reason


def test_required_sets() -> None:
    assert set(REQUIRED["order"]) == {"order_id", "status", "instrument_token"}
    assert set(REQUIRED["position"]) == {"instrument_token", "quantity"}
    assert set(REQUIRED["holding"]) == {"instrument_token", "quantity"}
    assert set(REQUIRED["gtt_order"]) == {"gtt_order_id", "rules"}


def test_errors_never_carry_secrets() -> None:
    raw = frame("order", quantity="x", tag=f"Bearer {TOKEN}", guid="my-api-secret-42",
                placed_by=TOKEN)
    with pytest.raises(PortfolioDecodeError) as info:
        decode_update(raw, secrets=["my-api-secret-42"])
    err = info.value
    for text in (str(err), err.text, err.reason, repr(err)):
        assert TOKEN not in text and "my-api-secret-42" not in text
        assert TOKEN[:20] not in text
    assert f"Bearer {fingerprint(TOKEN)}" in err.text and '"order_id": "240221025997024"' in err.text
    with pytest.raises(PortfolioDecodeError) as info:
        decode_update(f'{{"update_type":"Bearer {TOKEN}"}}')
    assert TOKEN not in str(info.value) and TOKEN[:20] not in info.value.reason


def test_error_text_is_cut_short() -> None:
    raw = frame("order", quantity="x", padding="p" * 100_000)
    with pytest.raises(PortfolioDecodeError) as info:
        decode_update(raw)
    assert len(info.value.text) < 2100 and "more characters" in info.value.text


# -- scrub --------------------------------------------------------------------------------------
FP = fingerprint


@pytest.mark.parametrize("text,expected", [
    ("Authorization: Bearer abc.def-ghi_jk", f"Authorization: Bearer {FP('abc.def-ghi_jk')}"),
    ("authorization=bearer%20abc123", f"authorization=bearer {FP('abc123')}"),
    (f"token is {TOKEN}!", f"token is {FP(TOKEN)}!"),
    ('{"access_token": "s3cr3t", "instrument_token": "NSE_EQ|X"}',
     f'{{"access_token": "{FP("s3cr3t")}", "instrument_token": "NSE_EQ|X"}}'),
    ("GET /v2/feed/authorize?code=zyx987&update_types=order",
     f"GET /v2/feed/authorize?code={FP('zyx987')}&update_types=order"),
    ('{"order_id": "1", "status": "open"}', '{"order_id": "1", "status": "open"}'),
    ("close code: 1000, status code 404", "close code: 1000, status code 404"),
])
def test_scrub_patterns(text: str, expected: str) -> None:
    assert scrub(text) == expected
    assert scrub(expected) == expected  # a fingerprint is never scrubbed again


def test_scrub_explicit_secrets_and_bytes() -> None:
    assert scrub(b"key=KEY1 pw=KEY12 x", secrets=["KEY1", b"KEY12", ""]) == \
        f"key={FP('KEY1')} pw={FP('KEY12')} x"
    hidden = scrub("Bearer abc.def", secrets=["abc"])
    assert hidden.startswith("Bearer tok-") and "abc" not in hidden
    assert scrub(b"\xffok") == "\ufffdok"
