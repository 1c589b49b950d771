"""Capture benchmarks, measured side by side in one run (see fastfeed.benchmark.capture and the
`fastfeed+record` client of fastfeed.benchmark.e2e).

    pytest benchmarks/test_capture.py -s

Targets (issue 11): recording keeps at least 80 % of the no-record end-to-end rate (medians of
3 interleaved rounds); replay runs at 70 % or more of decoding the same payloads from memory.
Measured and printed, not asserted. Recording runs three ways: with a writer process off the receiving core (``fastfeed+record``,
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


ROUNDS = 3   # the plain rate alone moves +-20 % between runs here: medians of interleaved rounds


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median rate, with every round's rate and drops beside it."""
    ordered = sorted(rows, key=lambda r: r["updates_per_s"])
    row = dict(ordered[len(ordered) // 2])
    row["round_rates"] = [r["updates_per_s"] for r in rows]
    row["round_dropped"] = [r.get("dropped", 0) for r in rows]
    return row


@pytest.fixture(scope="module")
def e2e_rows() -> list[dict[str, Any]]:
    clients = ("fastfeed", *RECORDING)
    rounds = [compare(mode="full", per_frame=1, clients=clients,
                      frames=dict.fromkeys(clients, 2_000_000)) for _ in range(ROUNDS)]
    rows = [_median_row([r[i] for r in rounds]) for i in range(len(clients))]
    for i, one in enumerate(rounds):
        print(f"\nround {i + 1}\n" + format_rows(one))
    plain = rows[0]
    print(f"\nmedians of {ROUNDS} interleaved rounds (each client its own server per round):")
    for recorded in rows[1:]:
        per_round = ", ".join(f"{r[1]['updates_per_s'] / r[0]['updates_per_s']:.0%}"
                              for r in ((one[0], one[rows.index(recorded)]) for one in rounds))
        print(f"{recorded['client']}: keeps {recorded['updates_per_s'] / plain['updates_per_s']:.1%} "
              f"of the rate (rounds: {per_round}); receiving thread {loop_ns(recorded):.0f} "
              f"ns/update against {loop_ns(plain):.0f}; dropped per round "
              f"{', '.join(f'{d:,}' for d in recorded['round_dropped'])}; "
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
