"""Messages per second delivered to a ``message`` listener: fastfeed.compat's
MarketDataStreamerV3 against the official SDK's, side by side in one run (see
fastfeed.benchmark.compat).

    pytest benchmarks/test_compat.py --benchmark-only -s

Target: the facade at least 5x the SDK streamer. The table printed with -s gives the ratio; it is
measured, not asserted.
"""
from __future__ import annotations

from typing import Any

import pytest

from fastfeed.benchmark.compat import compare, format_rows


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    result = compare()
    print("\n" + format_rows(result))
    return result


# ids without "fastfeed": the shared conftest's time ratios do not apply to recorded rates.
@pytest.mark.parametrize("client", ["compat", "sdk"])
def test_message_listener_rate(benchmark: Any, rows: list[dict[str, Any]], client: str) -> None:
    row = next(r for r in rows if r["client"] == client)
    benchmark.group = "compat"
    # The measurement already ran (both streamers in one run); record it as this result.
    benchmark.pedantic(lambda: row, rounds=1, iterations=1)
    benchmark.extra_info.update({k: v for k, v in row.items() if isinstance(v, (int, float, str))})
    benchmark.extra_info["ns_per_update"] = 1e9 / max(row["messages_per_s"], 1e-9)
    assert row["errors"] == 0 and row["frames"] > 0
