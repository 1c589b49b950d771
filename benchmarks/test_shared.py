"""Delay from the hub's commit to a reader's read in another process: shared memory (spinning and
polling readers) against a pyzmq PUB/SUB relay of the same updates, in one run (see
fastfeed.benchmark.shared).

    pytest benchmarks/test_shared.py --benchmark-only -s
    FASTFEED_SHARED_BOOST=1 pytest ...   # readers in the real-time class (root)

Targets: the spinning reader's p50 at most 5 us, and at least 5x lower than ZeroMQ's (blocking
recv, its usual use). The table printed with -s gives both; they are measured, not asserted.
"""
from __future__ import annotations

import os
from typing import Any

import pytest

from fastfeed.benchmark.shared import PATHS, compare, format_rows

pytest.importorskip("zmq")
BOOST = bool(os.environ.get("FASTFEED_SHARED_BOOST"))


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    result = compare(boost=BOOST)
    print("\n" + format_rows(result))
    return result


# ids without "fastfeed": the shared conftest's time ratios do not apply to recorded delays.
@pytest.mark.parametrize("path", list(PATHS), ids=[p.replace(" ", "_") for p in PATHS])
def test_commit_to_read_delay(benchmark: Any, rows: list[dict[str, Any]], path: str) -> None:
    row = next(r for r in rows if r["path"] == path)
    benchmark.group = "shared delay"
    benchmark.pedantic(lambda: row, rounds=1, iterations=1)
    benchmark.extra_info.update(row)
    assert row["count"] > 0 and row["p50_us"] > 0
