"""The seed corpora: the benchmark's frames and examples drawn from the test suite's strategies.

    python fuzz/seeds.py market DIR      # or: portfolio DIR
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _drawn(strategy, n: int) -> list[bytes]:
    """`n` examples of a hypothesis strategy, the same ones on every run."""
    from hypothesis import HealthCheck, given, settings

    out: list[bytes] = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example: bytes) -> None:
        out.append(example)

    collect()
    return out


def market_seeds(drawn: int = 300) -> list[bytes]:
    from fastfeed.benchmark.frames import case_frames, frame, instrument_keys

    seeds = [payload for payload, _ in case_frames().values()]
    seeds += [payload[:len(payload) // 2] for payload in seeds]  # truncated: rejected
    for mode in ("ltpc", "full", "option_greeks", "full_d30"):
        for live in (True, False):
            seeds.append(frame(instrument_keys(3), mode, live=live))
    if drawn:
        sys.path.insert(0, str(ROOT / "tests" / "decode"))
        import strategies as S
        from fastfeed.proto import fastfeed_market_v3_pb2 as pb

        seeds += _drawn(S.frames(), drawn)
        seeds += _drawn(S.frames(bad_utf8=True), drawn // 4)
        for kind in ("initial_feed", "live_feed", "market_info"):
            seeds += _drawn(S.realistic_frame(pb, kind), drawn // 6)
    return seeds


def portfolio_seeds() -> list[bytes]:
    from fastfeed.benchmark.portfolio import sample_frames

    seeds = [f for frames in sample_frames(per_type=8).values() for f in frames]
    seeds += [b"{}", b'{"update_type": "order"}', b"[]", b'"x"', b"\xff"]
    return seeds


def write(seeds: list[bytes], directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    for s in seeds:
        Path(directory, hashlib.sha1(s).hexdigest()).write_bytes(s)


if __name__ == "__main__":
    name, directory = sys.argv[1], sys.argv[2]
    write(market_seeds() if name == "market" else portfolio_seeds(), directory)
