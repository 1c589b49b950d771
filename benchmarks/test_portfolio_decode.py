"""Portfolio Stream Feed decode cost per update: fastfeed's typed records vs `json.loads` (and
untyped msgspec, for reference), on the same simulator frame, one group per update type.

    PYTHONPATH=src python -m pytest benchmarks/test_portfolio_decode.py --benchmark-only \
        --benchmark-group-by=group --benchmark-columns=min,median,mean,rounds

Each call decodes one frame, so the figures read as time per update. The same numbers (over 64
frames per type) come from `python -m fastfeed.benchmark.portfolio`.
"""
from __future__ import annotations

import pytest

from fastfeed.benchmark.portfolio import UPDATE_TYPES, paths, sample_frames
from fastfeed.portfolio import decode_update

FRAMES = sample_frames(per_type=64, seed=0)
PATHS = paths()


def representative(update_type: str) -> bytes:
    """The frame of median size among the sample of this type."""
    sample = sorted(FRAMES[update_type], key=len)
    return sample[len(sample) // 2]


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("update_type", UPDATE_TYPES)
def test_portfolio_decode(benchmark, update_type: str, path: str) -> None:
    frame = representative(update_type)
    benchmark.group = f"portfolio {update_type} ({len(frame)} bytes)"
    benchmark.extra_info["frame_bytes"] = len(frame)
    result = benchmark(PATHS[path], frame)
    if path == "fastfeed":
        assert result == decode_update(frame)
    else:
        assert result["update_type"] == update_type
