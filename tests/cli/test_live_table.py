"""The demo's live table: rows in a stable order, as many as asked, a change of zero as 0.00, and
a summary whose latency covers live ticks with the initial snapshot apart."""
from __future__ import annotations

import io
import time

from rich.console import Console

from fastfeed import MarketFeed
from fastfeed.cli import live
from fastfeed.sim import SimulatorThread

TOKEN = "live-table-token-0123456789"


def render(table: object) -> list[str]:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(table)
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def first_column(lines: list[str], keys: list[str]) -> list[str]:
    return [k for line in lines for k in keys if line.startswith(("│ " + k, "┃ " + k))]


def test_rows_keep_their_order_and_the_summary_keeps_the_snapshot_apart() -> None:
    with SimulatorThread(tokens=[TOKEN], instruments=30, rate=400, instruments_per_frame=5) as sim:
        with MarketFeed(TOKEN, url=sim.market_url, instruments=sim.instruments, mode="full") as feed:
            deadline = time.monotonic() + 30
            while feed.stats()["live_feed"] < 50 and time.monotonic() < deadline:
                time.sleep(0.02)
            meter = live.Meter(feed)
            orders = []
            for _ in range(3):
                lines = render(live.table(feed, meter, "t", rows=12))
                orders.append(first_column(lines, feed.instruments))
                time.sleep(0.1)
            summary = live.summary(feed, meter)
    assert orders[0] == feed.instruments[:12] and orders[0] == orders[1] == orders[2]
    assert "12 of 30" in " ".join(" ".join(lines).split())
    assert "live ticks, receive minus currentTs" in summary
    assert "initial snapshot (apart" in summary


def test_a_change_of_zero_is_0_00_and_an_unsent_price_is_a_dash() -> None:
    assert live._num(0.0) == "0.00" and live._num(-0.0001) == "-0.00"
    assert live._num(float("nan")) == "-" and live._price(0.0) == "-"
    assert live._price(1290.5) == "1,290.50"


def test_rows_default_to_what_fits_the_terminal(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LINES", "40")
    assert live.default_rows() == 31
    monkeypatch.setenv("LINES", "5")
    assert live.default_rows() == 1
