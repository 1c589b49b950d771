"""`python -m fastfeed demo` and `watch` in a subprocess, without a TTY (as in CI)."""
from __future__ import annotations

import os
import subprocess
import sys


def test_demo_without_a_tty_prints_a_summary() -> None:
    out = subprocess.run([sys.executable, "-m", "fastfeed", "demo", "--instruments", "20",
                          "--mode", "full", "--duration", "1", "--rate", "200"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "updates" in out.stdout and "decode errors 0" in out.stdout
    assert "20 instruments" in out.stdout


def test_watch_without_a_token_says_so() -> None:
    env = {k: v for k, v in os.environ.items() if k != "UPSTOX_ACCESS_TOKEN"}
    out = subprocess.run([sys.executable, "-m", "fastfeed", "watch", "NSE_EQ|INE002A01018"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2 and "UPSTOX_ACCESS_TOKEN" in out.stderr


def test_demo_over_the_modes_cap_is_a_one_line_error() -> None:
    out = subprocess.run([sys.executable, "-m", "fastfeed", "demo", "--instruments", "3000",
                          "--mode", "full", "--duration", "1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "2000" in out.stderr
    assert out.stderr.strip().count("\n") == 0 and out.stderr.startswith("fastfeed: error:")
