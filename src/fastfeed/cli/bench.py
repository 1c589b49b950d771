"""`python -m fastfeed bench`: decode cost against the official SDK and upb, as ratios."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="shorter rounds (noisier)")
    parser.add_argument("--e2e", action="store_true",
                        help="also end to end over loopback against the SDK streamer (minutes)")
    parser.add_argument("--e2e-mode", default="full", help="subscription mode for --e2e")
    parser.add_argument("--e2e-per-frame", type=int, default=1,
                        help="instruments per frame for --e2e")
    parser.add_argument("--compat", action="store_true",
                        help="also messages/s of fastfeed.compat's streamer against the SDK's (a minute)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from fastfeed.benchmark.decode import (allocations_per_frame, compare, cost_per_update,
                                           rss_growth)

    # No spinner: its refresh thread would share the GIL and the cores with what is measured.
    console = Console()
    budget = 0.02 if args.quick else 0.1
    console.print("decoding the same frames four ways...", style="dim")
    rows = compare(budget)
    table = Table(title="Decode cost per frame (ns, best of 5); ratios are time / fastfeed")
    for col in ("frame", "bytes", "fastfeed", "GB/s", "upb", "upb+fields", "SDK"):
        table.add_column(col, justify="right")
    for r in rows:
        def cell(path: str) -> str:
            if path not in r.ns:
                return "-"
            return f"{r.ns[path]:,.0f} ({r.ratio(path):.1f}x)"

        table.add_row(r.case, f"{r.size:,}", f"{r.ns['fastfeed']:,.0f}", f"{r.gb_per_s:.2f}",
                      cell("upb"), cell("upb+fields"), cell("sdk"))
    console.print(table)
    console.print("allocations and per-update cost...", style="dim")
    transient, blocks = allocations_per_frame(50_000 if args.quick else 200_000)
    few, many = cost_per_update(10, budget_s=budget), cost_per_update(5000, budget_s=budget)
    console.print(f"Python objects per decoded frame: {transient} bytes at tracemalloc's peak "
                  f"(0: none, not even a temporary); net memory blocks per frame {blocks:.5f}")
    console.print(f"ns per update, 10 instruments: {few:,.0f}; 5,000 instruments: {many:,.0f} "
                  f"({many / few:.2f}x)")
    frames = 1_000_000 if args.quick else 10_000_000
    console.print(f"resident memory over {frames:,} frames...", style="dim")
    before, after = rss_growth(frames)
    console.print(f"resident memory over {frames:,} frames: {before / 2**20:,.1f} MiB before, "
                  f"{after / 2**20:,.1f} MiB after")

    from fastfeed.benchmark import portfolio

    console.print("portfolio updates: typed records against json.loads...", style="dim")
    prows = portfolio.compare(budget_s=budget)
    console.print(portfolio.format_rows(prows))

    if args.e2e:
        from fastfeed.benchmark import e2e

        console.print("end to end over loopback (each client against its own server)...",
                      style="dim")
        rows = e2e.compare(mode=args.e2e_mode, per_frame=args.e2e_per_frame)
        console.print(e2e.format_rows(rows))
    if args.compat:
        from fastfeed.benchmark import compat

        console.print("message listeners: fastfeed.compat against the SDK streamer...", style="dim")
        console.print(compat.format_rows(compat.compare()))
    return 0
