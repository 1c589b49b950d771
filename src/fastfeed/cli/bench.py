"""`python -m fastfeed bench`: decode cost against the official SDK and upb, as ratios."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="shorter rounds (noisier)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from fastfeed.benchmark.decode import allocations_per_frame, compare, cost_per_update

    console = Console()
    budget = 0.02 if args.quick else 0.1
    with console.status("decoding the same frames four ways..."):
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
    with console.status("allocations and per-update cost..."):
        blocks = allocations_per_frame(50_000 if args.quick else 200_000)
        few, many = cost_per_update(10, budget_s=budget), cost_per_update(5000, budget_s=budget)
    console.print(f"Python memory blocks allocated per frame: {blocks:.5f}")
    console.print(f"ns per update, 10 instruments: {few:,.0f}; 5,000 instruments: {many:,.0f} "
                  f"({many / few:.2f}x)")
    return 0
