"""PortfolioBook: latest state per order / position / holding / GTT order, readable from another
thread while one thread applies updates."""
from __future__ import annotations

import json
import sys
import threading
from typing import Callable

import pytest

from fastfeed.portfolio import (
    GttUpdate,
    HoldingUpdate,
    OrderUpdate,
    PortfolioBook,
    PositionUpdate,
    decode_update,
)
from fastfeed.sim.portfolio import PortfolioBook as SimBook
from fastfeed.sim.prices import Market

KEY = "NSE_EQ|INE848E01016"


def readers_during(read_once: Callable[[], None], write: Callable[[], None], readers: int = 2) -> int:
    """Run `read_once` in a loop on `readers` threads while `write` runs on this one, switching
    threads often so that readers are caught mid-iteration; re-raise a reader's failure."""
    errors: list[BaseException] = []
    stop = threading.Event()
    reads = [0]

    def reader() -> None:
        try:
            while not stop.is_set():
                read_once()
                reads[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(readers)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        write()
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        sys.setswitchinterval(interval)
    assert not errors, errors[0]
    return reads[0]


def order(status: str, filled: int, quantity: int = 5, order_id: str = "240221025997024",
          **more) -> OrderUpdate:
    obj = {"update_type": "order", "order_id": order_id, "status": status,
           "instrument_token": KEY, "quantity": quantity, "filled_quantity": filled,
           "pending_quantity": quantity - filled, "average_price": 92.9 if filled else 0,
           "product": "D", "transaction_type": "BUY", "order_timestamp": "2024-02-21 14:40:02"}
    return decode_update(json.dumps(obj | more))


def position(quantity: int, product: str = "D", key: str = KEY) -> PositionUpdate:
    return decode_update(json.dumps({"update_type": "position", "instrument_token": key,
                                     "product": product, "quantity": quantity,
                                     "day_buy_quantity": max(quantity, 0), "buy_price": 92.9}))


def test_order_lifecycle_ends_with_the_latest_state() -> None:
    book = PortfolioBook()
    steps = [order("put order req received", 0), order("validation pending", 0),
             order("open", 0, exchange_order_id="1300000012345678",
                   exchange_timestamp="2024-02-21 14:40:03"),
             order("open", 2), order("open", 4), order("complete", 5)]
    previous = None
    for step in steps:
        assert book.apply(step) is previous
        previous = step
        assert book.orders[step.order_id] is step
    latest = book.orders["240221025997024"]
    assert (latest.status, latest.filled_quantity, latest.pending_quantity) == ("complete", 5, 0)
    assert len(book.orders) == 1 and book.updates == len(steps)
    book.apply(order("rejected", 0, order_id="2"))
    assert book.orders["2"].status == "rejected"  # finished orders stay, as Upstox shows them
    assert book.orders["240221025997024"] is latest


def test_positions_follow_fills_keyed_by_instrument_and_product() -> None:
    book = PortfolioBook()
    for qty in (2, 4, 5):
        book.apply(position(qty))
    book.apply(position(-3, product="I"))
    book.apply(position(7, key="NSE_EQ|INE002A01018"))
    assert book.positions[(KEY, "D")].quantity == 5
    assert book.positions[(KEY, "I")].quantity == -3
    assert book.positions[("NSE_EQ|INE002A01018", "D")].quantity == 7
    assert len(book.positions) == 3
    book.apply(position(0))  # a closed position stays, at quantity 0
    assert book.positions[(KEY, "D")].quantity == 0


def test_holdings_and_gtt_orders_keep_their_latest() -> None:
    book = PortfolioBook()
    book.apply(HoldingUpdate(instrument_token=KEY, quantity=3))
    book.apply(HoldingUpdate(instrument_token=KEY, quantity=8, t1_quantity=5))
    book.apply(GttUpdate(gtt_order_id="G1", rules=()))
    done = GttUpdate(gtt_order_id="G1", rules=(), type="SINGLE")
    book.apply(done)
    assert book.holdings[KEY].quantity == 8 and book.holdings[KEY].t1_quantity == 5
    assert book.gtt_orders["G1"] is done
    assert repr(book) == ("<PortfolioBook orders=0 positions=0 holdings=1 gtt_orders=1 "
                          "updates=4>")


def test_views_are_read_only_snapshots() -> None:
    book = PortfolioBook()
    book.apply(order("open", 0))
    view = book.orders
    with pytest.raises(TypeError):
        view["x"] = order("open", 0)  # type: ignore[index]
    book.apply(order("complete", 5))
    book.apply(order("open", 0, order_id="2"))
    assert view["240221025997024"].status == "open" and len(view) == 1  # unchanged
    assert book.orders["240221025997024"].status == "complete" and len(book.orders) == 2
    assert book.orders is book.orders  # nothing changed: the same snapshot, no copy
    snap = book.snapshot()
    assert snap.updates == 3 and snap.orders is book.orders and len(snap.positions) == 0


def test_apply_refuses_what_is_not_an_update() -> None:
    with pytest.raises(TypeError):
        PortfolioBook().apply({"update_type": "order"})  # type: ignore[arg-type]


def test_the_simulator_stream_leaves_the_last_update_per_key() -> None:
    sim = SimBook(Market(3), 3)
    book = PortfolioBook()
    expected: dict[str, dict] = {"order": {}, "position": {}, "holding": {}, "gtt_order": {}}
    for _ in range(300):
        for obj in sim.step():
            book.apply(decode_update(json.dumps(obj)))
            kind = obj["update_type"]
            key = {"order": lambda o: o["order_id"],
                   "position": lambda o: (o["instrument_token"], o["product"]),
                   "holding": lambda o: o["instrument_token"],
                   "gtt_order": lambda o: o["gtt_order_id"]}[kind](obj)
            expected[kind][key] = obj
    views = {"order": book.orders, "position": book.positions, "holding": book.holdings,
             "gtt_order": book.gtt_orders}
    for kind, want in expected.items():
        assert want, kind
        assert set(views[kind]) == set(want), kind
        for key, obj in want.items():
            assert json.loads(views[kind][key].raw) == obj
    statuses = {o.status for o in book.orders.values()}
    assert "complete" in statuses
    # a partially filled order shows its fills: status open, filled between 0 and quantity
    assert all(o.filled_quantity == o.quantity for o in book.orders.values()
               if o.status == "complete")


def test_reading_from_another_thread_while_updates_are_applied() -> None:
    book = PortfolioBook()
    n = 10_000
    records = [OrderUpdate(order_id=str(i), status="open", instrument_token=KEY, quantity=5)
               for i in range(n)]
    positions = [PositionUpdate(instrument_token=f"NSE_EQ|K{i % 2000}", quantity=i)
                 for i in range(n)]
    def read_once() -> None:
        for view in (book.orders, book.positions):
            n = 0
            for key in view:  # iterate while the writer keeps adding keys
                n += view[key].quantity is not None
            assert n == len(view)
        snap = book.snapshot()
        assert len(snap.orders) + len(snap.positions) <= snap.updates

    def write() -> None:
        for o, p in zip(records, positions):
            book.apply(o)
            book.apply(p)

    assert readers_during(read_once, write) > 0
    assert len(book.orders) == n and len(book.positions) == 2000
    assert book.updates == 2 * n


def test_two_writers_lose_nothing() -> None:
    book = PortfolioBook()
    batches = [[order("open", 0, order_id=f"{w}-{i}") for i in range(500)] for w in range(2)]
    threads = [threading.Thread(target=lambda b=b: [book.apply(r) for r in b]) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(book.orders) == 1000 and book.updates == 1000


def test_snapshot_is_one_moment_while_updates_are_applied() -> None:
    """Each record is a new key, so the four maps of one moment hold exactly `updates` records;
    and the writer goes on while a reader holds the readers' lock."""
    book = PortfolioBook()
    n = 5_000
    records = []
    for i in range(n):
        records += [OrderUpdate(order_id=str(i), status="open", instrument_token=KEY, quantity=1),
                    PositionUpdate(instrument_token=f"NSE_EQ|P{i}", quantity=i),
                    HoldingUpdate(instrument_token=f"NSE_EQ|H{i}", quantity=i),
                    GttUpdate(gtt_order_id=f"GTT{i}", rules=())]
    def read_once() -> None:
        snap = book.snapshot()
        total = len(snap.orders) + len(snap.positions) + len(snap.holdings) + len(snap.gtt_orders)
        assert total == snap.updates, (total, snap.updates)

    def write() -> None:
        with book._read_lock:  # a reader in its slow path does not hold up the writer
            for r in records[: len(records) // 2]:
                book.apply(r)
        for r in records[len(records) // 2:]:
            book.apply(r)

    assert readers_during(read_once, write) > 0
    snap = book.snapshot()
    assert snap.updates == 4 * n and len(snap.gtt_orders) == n
