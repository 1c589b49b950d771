"""Decode cost per frame: fastfeed against upb alone, upb plus reading every field, and the
official SDK's path (FromString + MessageToDict), on the same frames in one run.

    pytest benchmarks/test_decode.py --benchmark-group-by=group --benchmark-columns=min,median

benchmarks/conftest.py prints the ratios to fastfeed at the end of the run.
"""
import pytest

from fastfeed.benchmark.decode import allocations_per_frame, cost_per_update, paths, rss_growth
from fastfeed.benchmark.frames import CASES, case_frames

FRAMES = case_frames()
PATHS = paths()


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("case", [name for name, _, _ in CASES])
def test_decode(benchmark, case, path):
    payload, instruments = FRAMES[case]
    benchmark.group = case
    benchmark.extra_info.update(bytes=len(payload), instruments=instruments)
    benchmark(PATHS[path], payload)


def test_allocations_per_frame(benchmark):
    # The hot path must create no Python object per frame, not even a temporary.
    transient, blocks = benchmark.pedantic(allocations_per_frame, rounds=1, iterations=1)
    benchmark.extra_info.update(transient_bytes=transient, blocks_per_frame=blocks)
    assert transient == 0 and blocks < 1e-3


@pytest.mark.parametrize("instruments", [10, 5000])
def test_cost_per_update(benchmark, instruments):
    benchmark.group = "cost per update"
    ns = benchmark.pedantic(cost_per_update, args=(instruments,), rounds=1, iterations=1)
    benchmark.extra_info["ns_per_update"] = ns


def test_resident_memory_over_ten_million_frames(benchmark):
    before, after = benchmark.pedantic(rss_growth, rounds=1, iterations=1)
    benchmark.extra_info.update(rss_before=before, rss_after=after)
    # Memory is fixed at construction: nothing may grow with the frame count (one page of slack).
    assert after - before <= 4096
