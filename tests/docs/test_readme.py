"""Every ```python block of README.md runs unchanged, each in its own interpreter."""
from __future__ import annotations

import subprocess
import sys

import pytest

from readme_blocks import NEEDS_ACCOUNT, blocks, runnable

TIMEOUT = 90  # seconds per block; they start a simulator and stop within a few


def test_a_block_that_needs_an_account_says_so() -> None:
    assert len(runnable()) >= 5
    for line, code in runnable():
        assert "UPSTOX_ACCESS_TOKEN" not in code and "api.upstox.com" not in code, \
            f"README.md:{line} talks to Upstox: its first line must be {NEEDS_ACCOUNT!r}"


@pytest.mark.parametrize(("line", "code"), runnable(), ids=[f"line{n}" for n, _ in runnable()])
def test_readme_block_runs(line: int, code: str) -> None:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 0, f"README.md:{line} failed:\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), f"README.md:{line} printed nothing"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
