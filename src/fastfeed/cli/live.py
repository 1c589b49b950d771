"""The live table shared by `demo` and `watch`: instruments in a stable order, rates, latency.

Reads only the feed's public API (snapshot view, stats) from the main thread while the feed
runs in its own thread. Without a TTY it prints a summary at the end and nothing else.
"""
from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from .errors import CommandError
from .logs import add_log_level

if TYPE_CHECKING:
    from fastfeed.market import MarketFeed


def _num(x: float, digits: int = 2) -> str:
    """A price or change; "-" only for a value the feed has not sent (NaN)."""
    return "-" if math.isnan(x) else f"{x:,.{digits}f}"


def _price(x: float) -> str:
    """A price of 0 is one the feed has not sent (no depth yet, no trade yet)."""
    return _num(x if x else float("nan"))


def default_rows() -> int:
    """Rows that fit the terminal below the title, header, borders and caption."""
    return max(1, shutil.get_terminal_size((100, 24)).lines - 9)


def add_display_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=None, metavar="N",
                        help="instruments shown in the table (default: what fits the terminal)")
    # ERROR: a failed attempt or a reconnect is the table's news (and the error line's), not a
    # log line between the user and the one line that says what went wrong.
    add_log_level(parser, "the library", default="ERROR")


class Meter:
    """Updates and frames per second over the last refresh interval."""

    def __init__(self, feed: MarketFeed) -> None:
        self.feed = feed
        self.started = time.monotonic()
        self._t = self.started
        self._updates = 0
        self._frames = 0
        self.updates_per_s = 0.0
        self.frames_per_s = 0.0

    def tick(self) -> None:
        now = time.monotonic()
        d = self.feed.decoder
        dt = max(now - self._t, 1e-9)
        self.updates_per_s = (d.updates - self._updates) / dt
        self.frames_per_s = (d.frames - self._frames) / dt
        self._t, self._updates, self._frames = now, d.updates, d.frames


def table(feed: MarketFeed, meter: Meter, title: str, rows: int) -> Any:
    """The first `rows` instruments in snapshot row order: a row never moves between refreshes."""
    from rich.table import Table

    snap = feed.snapshot[:rows].copy()  # one consistent-enough copy per refresh; rows are tiny
    keys = feed.instruments
    lat = feed.latency()["recv_minus_server_ms"]
    stats = feed.stats()
    caption = (f"{meter.updates_per_s:,.0f} updates/s  {meter.frames_per_s:,.0f} frames/s  "
               f"receive-currentTs p50 {lat['p50']:.1f} ms p99 {lat['p99']:.1f} ms  "
               f"errors {stats['decode_errors']}  reconnects {stats['reconnects']}")
    if len(keys) > rows:
        caption += f"  ({rows} of {len(keys)} instruments shown; --rows)"
    t = Table(title=title, caption=caption, expand=False)
    for name, justify in (("instrument", "left"), ("LTP", "right"), ("change", "right"),
                          ("%", "right"), ("bid", "right"), ("ask", "right"), ("volume", "right"),
                          ("updates", "right")):
        t.add_column(name, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                     min_width=20 if name == "instrument" else None)
    for i, row in enumerate(snap):
        ltp, cp = float(row["ltp"]), float(row["cp"])
        change = ltp - cp if cp and ltp else float("nan")
        pct = change / cp * 100 if cp else float("nan")
        style = "green" if change > 0 else ("red" if change < 0 else "")
        stale = " (stale)" if row["flags"] & 1 else ""
        t.add_row(keys[i] + stale, _price(ltp),
                  f"[{style}]{_num(change)}[/]" if style else _num(change),
                  f"[{style}]{_num(pct)}[/]" if style else _num(pct),
                  _price(float(row["bid_p"][0])), _price(float(row["ask_p"][0])),
                  f"{int(row['vtt']):,}" if row["vtt"] else "-", f"{int(row['updates']):,}")
    return t


def summary(feed: MarketFeed, meter: Meter) -> str:
    elapsed = time.monotonic() - meter.started
    s = feed.stats()
    lat = s["latency"]["recv_minus_server_ms"]
    cb = s["latency"]["frame_to_callback_us"]
    lines = [
        f"ran {elapsed:.1f} s: {s['frames']:,} frames, {s['updates']:,} updates "
        f"({s['updates'] / max(elapsed, 1e-9):,.0f}/s), {s['bytes']:,} bytes, "
        f"{s['instruments']} instruments",
        f"decode errors {s['decode_errors']}, reconnects {s['reconnects']}, gaps {s['gaps']}, "
        f"callback errors {s['callback_errors']}",
        f"live ticks, receive minus currentTs: p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms, "
        f"max {lat['max']:.2f} ms ({lat['count']} samples)",
    ]
    snap = s["latency"]["snapshot_recv_minus_server_ms"]
    if snap["count"]:
        lines.append(f"initial snapshot (apart: it dominates short runs), receive minus currentTs: "
                     f"p50 {snap['p50']:.2f} ms, max {snap['max']:.2f} ms ({snap['count']} rows)")
    if cb["count"]:
        lines.append(f"frame to callback: p50 {cb['p50']:.1f} us, p99 {cb['p99']:.1f} us")
    return "\n".join(lines)


def show(feed: MarketFeed, title: str, duration: float | None, out: TextIO = sys.stdout,
         refresh: float = 0.25, rows: int | None = None) -> int:
    """Run the live table (TTY) or just wait (no TTY) until `duration` or Ctrl-C; print a summary.
    `rows`: instruments in the table (None: what fits the terminal)."""
    rows = default_rows() if rows is None else max(1, rows)
    meter = Meter(feed)
    deadline = None if duration is None else time.monotonic() + duration
    interactive = out.isatty()
    try:
        if interactive:
            try:
                from rich.console import Console
                from rich.live import Live
            except ModuleNotFoundError:
                raise CommandError("the live table needs rich: pip install 'fastfeed[demo]' "
                                   "(or pipe the output for the summary alone)") from None

            console = Console(file=out)
            with Live(table(feed, meter, title, rows), console=console, refresh_per_second=4,
                      transient=False) as live:
                while deadline is None or time.monotonic() < deadline:
                    time.sleep(refresh)
                    meter.tick()
                    live.update(table(feed, meter, title, rows))
                    if not feed.running:
                        break
        else:
            while (deadline is None or time.monotonic() < deadline) and feed.running:
                time.sleep(refresh)
    except KeyboardInterrupt:
        pass
    finally:
        feed.stop()
    print(summary(feed, meter), file=out, flush=True)
    if feed.error is not None:
        print(f"fastfeed: the feed stopped: {feed.error}", file=sys.stderr, flush=True)
        return 1
    return 0
