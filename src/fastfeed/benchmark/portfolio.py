"""Decode cost of a Portfolio Stream Feed update: fastfeed's typed records against `json.loads`.

The frames are the simulator's (the documented JSON shapes), the same bytes for every path, and
the paths take turns per update type so that a noisy machine hits them alike.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

import msgspec

from fastfeed.portfolio import decode_update

UPDATE_TYPES = ("order", "position", "holding", "gtt_order")


def sample_frames(per_type: int = 64, seed: int = 0) -> dict[str, list[bytes]]:
    """`per_type` frames of each update type, as the simulator sends them (JSON bytes)."""
    from fastfeed.sim.portfolio import PortfolioBook
    from fastfeed.sim.prices import Market

    book = PortfolioBook(Market(seed), seed)
    frames: dict[str, list[bytes]] = {t: [] for t in UPDATE_TYPES}
    while any(len(v) < per_type for v in frames.values()):
        for update in book.step():
            bucket = frames[update["update_type"]]
            if len(bucket) < per_type:
                bucket.append(json.dumps(update).encode())
    return frames


def paths() -> dict[str, Callable[[bytes], object]]:
    """The decode paths compared, each a function of one frame."""
    return {
        "fastfeed": decode_update,               # typed, immutable record (msgspec, tagged union)
        "json.loads": json.loads,                # what the official SDK's users start from
        "msgspec dict": msgspec.json.Decoder().decode,  # untyped msgspec, for reference
    }


def time_ns(fn: Callable[[bytes], object], frames: list[bytes], budget_s: float = 0.1,
            repeat: int = 5) -> float:
    """Best-of-`repeat` nanoseconds per update, cycling through `frames`, each round ~`budget_s`."""
    def once(rounds: int) -> int:
        t0 = time.perf_counter_ns()
        for _ in range(rounds):
            for f in frames:
                fn(f)
        return time.perf_counter_ns() - t0

    once(1)
    rounds = 1
    while (dt := once(rounds)) < budget_s * 1e9 / 4 and rounds < 1 << 20:
        rounds *= 2
    rounds = max(1, int(rounds * budget_s * 1e9 / max(dt, 1)))
    return min(once(rounds) for _ in range(repeat)) / (rounds * len(frames))


@dataclass
class PortfolioRow:
    update_type: str
    size: int  # mean frame size in bytes
    ns: dict[str, float]  # path -> ns per update

    def speedup(self, path: str = "json.loads") -> float:
        """How many times faster fastfeed is than `path` on these frames."""
        return self.ns[path] / self.ns["fastfeed"]


def compare(budget_s: float = 0.1, per_type: int = 64, seed: int = 0) -> list[PortfolioRow]:
    """Every update type through every path: one row per type, ns per update."""
    frames = sample_frames(per_type, seed)
    fns = paths()
    rows = []
    for update_type in UPDATE_TYPES:
        sample = frames[update_type]
        ns = {name: time_ns(fn, sample, budget_s) for name, fn in fns.items()}
        rows.append(PortfolioRow(update_type, sum(map(len, sample)) // len(sample), ns))
    return rows


def format_rows(rows: list[PortfolioRow]) -> str:
    """A plain-text table of `compare()`'s rows, for `python -m fastfeed bench`."""
    names = list(rows[0].ns) if rows else []
    head = f"{'update_type':<12}{'bytes':>7}" + "".join(f"{n + ' ns':>17}" for n in names)
    lines = ["Portfolio Stream Feed: ns per update (lower is better)",
             head + f"{'vs json.loads':>15}"]
    for r in rows:
        cells = "".join(f"{r.ns[n]:>17,.0f}" for n in names)
        lines.append(f"{r.update_type:<12}{r.size:>7}{cells}{r.speedup():>14.1f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_rows(compare()))
