"""The official Upstox guide's streamer examples, with only the import changed to fastfeed.compat,
run in their own process against the simulator: they stream, the process stays up after the
script's main() returns, and it ends once disconnect() is called."""
from __future__ import annotations

import ast
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from fastfeed.sim import SimulatorThread

GUIDE = Path(__file__).parent / "guide"


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    # No tokens configured: the simulator takes the guide's "<ACCESS_TOKEN>" as a standard one.
    with SimulatorThread(rate=100, portfolio_rate=100, ping_interval=None) as sim:
        yield sim


def run_guide(sim: Any, script: str, lines_wanted: int) -> list[str]:
    proc = subprocess.Popen([sys.executable, "-u", str(GUIDE / "run_guide.py"), str(GUIDE / script),
                             sim.market_url, sim.portfolio_url],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: "queue.Queue[str | None]" = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    after_main = 0
    try:
        while after_main < lines_wanted:
            line = lines.get(timeout=30)
            assert line is not None, f"the script ended early: {seen} {proc.stderr.read()}"  # type: ignore[union-attr]
            if seen and "main returned" in seen:
                after_main += 1
            seen.append(line)
        assert proc.stdin is not None
        proc.stdin.write("\n")  # disconnect
        proc.stdin.flush()
        assert proc.wait(30) == 0, proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return seen


def test_market_data_example(sim: Any) -> None:
    seen = run_guide(sim, "market_data_v3.py", 10)
    messages = [ast.literal_eval(line) for line in seen if line.startswith("{")]
    assert messages[0]["type"] == "market_info"
    keys = set().union(*(m.get("feeds", {}) for m in messages))
    assert keys == {"NSE_INDEX|Nifty 50", "NSE_INDEX|Nifty Bank"}


def test_subscribe_on_open_example(sim: Any) -> None:
    seen = run_guide(sim, "market_data_v3_subscribe.py", 10)
    assert "Connected. Subscribing to instrument keys." in seen
    messages = [ast.literal_eval(line) for line in seen if line.startswith("{")]
    feeds = [m["feeds"] for m in messages if "feeds" in m]
    assert set().union(*feeds) == {"NSE_EQ|INE020B01018", "NSE_EQ|INE467B01029"}
    assert any(f["fullFeed"]["marketFF"]["marketLevel"]["bidAskQuote"]
               for frame in feeds for f in frame.values())


def test_portfolio_example(sim: Any) -> None:
    seen = run_guide(sim, "portfolio_data.py", 20)
    updates = [json.loads(line) for line in seen if line.startswith("{")]
    assert len(updates) >= 19
    assert {u["update_type"] for u in updates} <= {"order", "position", "holding", "gtt_order"}
