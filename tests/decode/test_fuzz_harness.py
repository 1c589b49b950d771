"""The fuzz harnesses (fuzz/) run clean on their seed corpora, without atheris: the checks they
make hold for the benchmark's frames and the strategies' examples, and they stay runnable."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"fuzz_{name}", FUZZ / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def seeds():
    return load("seeds")


def test_market_harness_on_its_seeds(seeds):
    harness = load("market")
    corpus = seeds.market_seeds(drawn=8)
    for data in corpus:
        harness.TestOneInput(data)
    # the seeds reach both sides: accepted and rejected frames, and keys past the decoder's rows
    assert harness.DECODER.errors > 0 and harness.DECODER.frames > 0
    assert harness.DECODER.rejected_keys > 0


def test_market_harness_catches_a_disagreement(seeds, monkeypatch):
    harness = load("market")
    import fastfeed

    monkeypatch.setattr(fastfeed, "to_dict", lambda data: {"feeds": {}})
    with pytest.raises(AssertionError):
        harness.check(seeds.market_seeds(drawn=0)[0])


def test_portfolio_harness_on_its_seeds(seeds):
    harness = load("portfolio")
    for data in seeds.portfolio_seeds():
        harness.TestOneInput(data)
