"""The portfolio stream feed: documented shapes, coherent lifecycles, positions that follow fills."""
from __future__ import annotations

import json
from collections import defaultdict

from fastfeed.sim import Faults, Simulator

from sim_helpers import TOKEN, connect, run

ORDER_KEYS = {"update_type", "user_id", "exchange", "instrument_token", "instrument_key",
              "trading_symbol", "product", "order_type", "average_price", "price", "trigger_price",
              "quantity", "disclosed_quantity", "pending_quantity", "transaction_type",
              "order_ref_id", "exchange_order_id", "parent_order_id", "validity", "status",
              "is_amo", "variety", "tag", "exchange_timestamp", "status_message", "order_id",
              "order_request_id", "order_timestamp", "filled_quantity", "guid", "placed_by",
              "status_message_raw"}
NEXT = {"put order req received": {"open", "rejected"},
        "open": {"open", "complete", "cancelled"}}


async def collect(update_types: str, n: int, seed: int = 0, **kwargs) -> list[dict]:
    async with Simulator(tokens=[TOKEN], portfolio_rate=2000, seed=seed, **kwargs) as sim:
        async with connect(f"{sim.portfolio_url}?update_types={update_types}") as ws:
            return [json.loads(await ws.recv()) for _ in range(n)]


def test_orders_follow_their_lifecycle_and_positions_follow_fills() -> None:
    updates = run(collect("order%2Cposition%2Cholding%2Cgtt_order", 600))
    kinds = {u["update_type"] for u in updates}
    assert kinds == {"order", "position", "holding", "gtt_order"}
    last: dict[str, dict] = {}
    net: dict[str, int] = defaultdict(int)  # fills so far, per instrument
    for u in updates:
        if u["update_type"] == "order":
            assert ORDER_KEYS <= set(u)
            prev = last.get(u["order_id"])
            if prev is None:
                assert u["status"] == "put order req received" and u["filled_quantity"] == 0
            else:
                assert u["status"] in NEXT[prev["status"]]
                assert u["filled_quantity"] >= prev["filled_quantity"]
                fill = u["filled_quantity"] - prev["filled_quantity"]
                sign = 1 if u["transaction_type"] == "BUY" else -1
                net[u["instrument_key"]] += sign * fill
            if u["status"] == "complete":
                assert u["filled_quantity"] == u["quantity"] and u["pending_quantity"] == 0
                assert u["average_price"] > 0
            last[u["order_id"]] = u
        elif u["update_type"] == "position":
            assert u["quantity"] == u["day_buy_quantity"] - u["day_sell_quantity"]
            assert u["quantity"] == net[u["instrument_key"]]
        elif u["update_type"] == "gtt_order":
            assert u["expires_at"] > u["created_at"] > 1_600_000_000_000_000  # microseconds
            assert u["rules"][0]["strategy"] == "ENTRY"
            assert {r["status"] for r in u["rules"]} <= {"PENDING", "COMPLETED", "FAILED", "CANCELLED"}
    assert any(u["status"] == "complete" for u in last.values())


def test_only_the_asked_update_types_are_sent() -> None:
    updates = run(collect("holding", 20))
    assert {u["update_type"] for u in updates} == {"holding"}
    updates = run(collect("", 20))  # none asked: order
    assert {u["update_type"] for u in updates} == {"order"}


def test_same_seed_same_portfolio_stream() -> None:
    def strip(u: dict) -> dict:
        return {k: v for k, v in u.items() if k not in ("order_timestamp", "exchange_timestamp",
                                                        "created_at", "expires_at")}
    a = [strip(u) for u in run(collect("order,position,gtt_order", 100, seed=5))]
    b = [strip(u) for u in run(collect("order,position,gtt_order", 100, seed=5))]
    assert a == b


def test_malformed_portfolio_frame_is_not_json() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], portfolio_rate=2000,
                             faults=Faults(malformed_every=3)) as sim:
            async with connect(sim.portfolio_url) as ws:
                bad = 0
                for _ in range(12):
                    try:
                        json.loads(await ws.recv())
                    except ValueError:
                        bad += 1
                assert bad == 3
    run(main())
