"""Capture benchmarks, measured side by side in one run (see fastfeed.benchmark.capture and the
`fastfeed+record` client of fastfeed.benchmark.e2e).

    pytest benchmarks/test_capture.py -s

Targets (issue 11): recording keeps at least 80 % of the no-record end-to-end rate; replay runs
at 70 % or more of decoding the same payloads from memory. Measured and printed, not asserted.
Recording runs three times: with a writer process off the receiving core (``fastfeed+record``,
as a full-rate deployment places it), with the writer thread there (``fastfeed+record-thread``)
and with the writer thread sharing the receiving core (``fastfeed+record-shared``).
"""
from __future__ import annotations

from typing import Any

import pytest

from fastfeed.benchmark.capture import format_result, run
from fastfeed.benchmark.e2e import compare, format_rows


@pytest.fixture(scope="module")
def replay_result() -> dict[str, Any]:
    result = run(frames=100_000, rounds=3)
    print("\n" + format_result(result))
    return result


RECORDING = ("fastfeed+record", "fastfeed+record-thread", "fastfeed+record-shared")


def loop_ns(row: dict[str, Any]) -> float:
    """CPU of the receiving thread alone per update (a recording's writer not counted)."""
    return row["loop_cpu_s"] / max(row["updates"], 1) * 1e9


@pytest.fixture(scope="module")
def e2e_rows() -> list[dict[str, Any]]:
    clients = ("fastfeed", *RECORDING)
    rows = compare(mode="full", per_frame=1, clients=clients,
                   frames=dict.fromkeys(clients, 2_000_000))
    print("\n" + format_rows(rows))
    plain = rows[0]
    for recorded in rows[1:]:
        print(f"{recorded['client']}: keeps {recorded['updates_per_s'] / plain['updates_per_s']:.1%} "
              f"of the rate; receiving thread {loop_ns(recorded):.0f} ns/update against "
              f"{loop_ns(plain):.0f} ({loop_ns(plain) / loop_ns(recorded):.1%}); "
              f"{recorded.get('recorded', 0):,} records, {recorded.get('dropped', 0):,} dropped, "
              f"{recorded.get('file_bytes', 0) / max(recorded['bytes'], 1):.2f} file bytes per raw byte")
    return rows


@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_replay_rate(benchmark: Any, replay_result: dict[str, Any], compression: str) -> None:
    row = replay_result[compression]
    benchmark.group = "capture-replay"
    benchmark.pedantic(lambda: row, rounds=1, iterations=1)
    benchmark.extra_info.update(row)
    benchmark.extra_info["ns_per_update"] = row["replay_s"] / replay_result["updates"] * 1e9
    assert row["file_bytes"] > 0


@pytest.mark.parametrize("client", RECORDING)
def test_recording_overhead(benchmark: Any, e2e_rows: list[dict[str, Any]], client: str) -> None:
    plain = e2e_rows[0]
    recorded = next(r for r in e2e_rows if r["client"] == client)
    benchmark.group = "capture-e2e"
    benchmark.pedantic(lambda: recorded, rounds=1, iterations=1)
    benchmark.extra_info["record_vs_plain"] = recorded["updates_per_s"] / plain["updates_per_s"]
    benchmark.extra_info["loop_cpu_vs_plain"] = loop_ns(plain) / loop_ns(recorded)
    benchmark.extra_info["ns_per_update"] = 1e9 / max(recorded["updates_per_s"], 1e-9)
    assert recorded["errors"] == 0 and recorded["recorded"] + recorded["dropped"] >= recorded["frames"]
