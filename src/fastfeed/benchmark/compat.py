"""Messages per second delivered to a ``message`` listener: fastfeed.compat's
MarketDataStreamerV3 against the official SDK's, the same user code, the same benchmark-mode
simulator configuration, one run (each client in its own process against its own server, pinned
as in fastfeed.benchmark.e2e). The dict is the SDK's cost, so the facade's ceiling is ``to_dict``.

    python -m fastfeed.benchmark.compat          # prints the table
"""
from __future__ import annotations

from typing import Any

from fastfeed.benchmark.e2e import TOKEN, _client_sdk, count_messages, run_client

CLIENTS = ("facade", "sdk")
# Each client gets about the same wall time, not the same frame count.
DEFAULT_FRAMES = {"facade": 400_000, "sdk": 40_000}


def _client_facade(url: str, keys: list[str], mode: str) -> dict[str, Any]:
    from fastfeed.compat import MarketDataStreamerV3

    return count_messages(MarketDataStreamerV3(TOKEN, keys, mode, url=url))


_CLIENT_FUNCS = {"facade": _client_facade, "sdk": _client_sdk}


def compare(*, mode: str = "full", per_frame: int = 1, instruments: int = 100,
            frames: dict[str, int] | None = None, pin: bool = True) -> list[dict[str, Any]]:
    """One row per client with ``messages_per_s`` and ``vs_sdk`` (messages per second over the
    SDK streamer's)."""
    counts = {**DEFAULT_FRAMES, **(frames or {})}
    rows = [run_client(kind, counts[kind], mode=mode, instruments=instruments, per_frame=per_frame,
                       pin=pin, clients="fastfeed.benchmark.compat")
            for kind in CLIENTS]
    for r in rows:
        r["messages_per_s"] = r["frames"] / max(r["seconds"], 1e-9)
    sdk = rows[-1]["messages_per_s"]
    for r in rows:
        r["vs_sdk"] = r["messages_per_s"] / sdk
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'streamer':<34}{'messages':>10}{'seconds':>9}{'messages/s':>13}"
             f"{'CPU us/message':>16}{'vs SDK':>8}"]
    names = {"facade": "fastfeed.compat MarketDataStreamerV3", "sdk": "upstox_client MarketDataStreamerV3"}
    for r in rows:
        cpu_us = r["cpu_s"] / max(r["frames"], 1) * 1e6
        lines.append(f"{names[r['client']]:<34}{r['frames']:>10,}{r['seconds']:>9.2f}"
                     f"{r['messages_per_s']:>13,.0f}{cpu_us:>16.1f}{r['vs_sdk']:>7.1f}x")
    first = rows[0] if rows else {}
    lines.append(f"message listener, loopback TCP, mode {first.get('mode')}, "
                 f"{first.get('instruments_per_frame')} instrument(s) per frame")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_rows(compare()))
