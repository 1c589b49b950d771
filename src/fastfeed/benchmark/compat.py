"""Messages per second delivered to a ``message`` listener: fastfeed.compat's
MarketDataStreamerV3 against the official SDK's, running the same client code (only the
streamer class differs), against the same benchmark-mode simulator configuration, in one run
(each client in its own process against its own server, pinned as in fastfeed.benchmark.e2e).
The dict is the SDK's cost, so the facade's ceiling is ``to_dict``.

    python -m fastfeed.benchmark.compat          # prints the table
"""
from __future__ import annotations

from typing import Any

from fastfeed.benchmark import e2e

CLIENTS = ("compat", "sdk")
NAMES = {"compat": "fastfeed.compat MarketDataStreamerV3", "sdk": "upstox_client MarketDataStreamerV3"}


def compare(*, mode: str = "full", per_frame: int = 1, instruments: int = 100,
            frames: dict[str, int] | None = None, pin: bool = True) -> list[dict[str, Any]]:
    """One row per streamer with ``messages_per_s`` and ``vs_sdk`` (messages per second over
    the SDK streamer's)."""
    rows = e2e.compare(mode=mode, per_frame=per_frame, instruments=instruments, frames=frames,
                       clients=CLIENTS, pin=pin)
    for r in rows:
        r["messages_per_s"] = r["frames"] / max(r["seconds"], 1e-9)
    sdk = next(r for r in rows if r["client"] == "sdk")["messages_per_s"]
    for r in rows:
        r["vs_sdk"] = r["messages_per_s"] / sdk
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'streamer':<38}{'messages':>10}{'messages/s':>12}{'CPU us/msg':>12}{'vs SDK':>8}"]
    for r in rows:
        cpu_us = r["cpu_s"] / max(r["frames"], 1) * 1e6
        lines.append(f"{NAMES[r['client']]:<38}{r['frames']:>10,}{r['messages_per_s']:>12,.0f}"
                     f"{cpu_us:>12.1f}{r['vs_sdk']:>7.1f}x")
    first = rows[0] if rows else {}
    lines.append(f"to a message listener, loopback TCP, mode {first.get('mode')}, "
                 f"{first.get('instruments_per_frame')} instrument(s) per frame")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_rows(compare()))
