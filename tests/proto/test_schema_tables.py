"""fastfeed.schema is the one table of the feed's vocabulary: it matches the generated protobuf
enums, and the client and the simulator use its objects rather than copies of their own."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

from fastfeed import schema
from fastfeed.proto import fastfeed_market_v3_pb2 as pb

SRC = Path(schema.__file__).resolve().parent


def names(enum: object) -> tuple[str, ...]:
    values = enum.DESCRIPTOR.values  # type: ignore[attr-defined]
    assert [v.number for v in values] == list(range(len(values)))
    return tuple(v.name for v in values)


def test_the_tables_match_the_schema() -> None:
    assert schema.REQUEST_MODE_NAMES == names(pb.RequestMode)
    assert schema.TYPE_NAMES == names(pb.Type)
    assert schema.STATUS_NAMES == names(pb.MarketStatus)
    assert schema.KIND_NAMES[1:] == ("ltpc", "market", "index", "option_greeks")
    assert len(schema.MODES) == len(schema.REQUEST_MODE_NAMES)
    for mode, number in schema.REQUEST_MODE.items():
        assert schema.MODES[number] == mode and schema.mode_of(number) == mode
        wire = schema.REQUEST_MODE_NAMES[number]
        assert wire == mode or schema.MODE_ALIASES[wire] == mode
    assert schema.mode_of(9) == "requestMode_9"
    assert set(schema.CAPS) == set(schema.MODES) and set(schema.DEPTH) <= set(schema.MODES)
    assert schema.PLUS_MODES <= set(schema.MODES)


def test_client_and_simulator_share_the_same_objects() -> None:
    from fastfeed.sim import Simulator, frames, market
    requests = importlib.import_module("fastfeed.transport.requests")
    subscriptions = importlib.import_module("fastfeed.transport.subscriptions")

    assert subscriptions.CAPS is schema.CAPS and subscriptions.MODES is schema.MODES
    assert requests.METHODS is schema.METHODS and market.METHODS is schema.METHODS
    assert market.CAPS is schema.CAPS and frames.DEPTH is schema.DEPTH
    assert frames.REQUEST_MODE is schema.REQUEST_MODE
    assert Simulator().caps == dict(schema.CAPS)


def test_no_module_spells_a_table_out_again() -> None:
    tables = {
        "modes": r"\(\s*\"ltpc\",\s*\"full\",\s*\"option_greeks\"",
        "request modes": r"\"ltpc\",\s*\"full_d5\",\s*\"option_greeks\"",
        "methods": r"\(\s*\"sub\",\s*\"unsub\"",
        "caps": r"\"ltpc\":\s*\(\s*5000",
        "statuses": r"\"PRE_OPEN_START\",\s*\"PRE_OPEN_END\"",
        "kinds": r"\"none\",\s*\"ltpc\",\s*\"market\"",
    }
    for path in SRC.rglob("*"):
        if path.suffix not in (".py", ".pyx", ".pxd") or path.name == "schema.py" or "proto" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        for what, pattern in tables.items():
            assert not re.search(pattern, text), f"{path.relative_to(SRC)} spells out the {what}"
