from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fastfeed.sim import SimulatorThread

from capture_helpers import TOKEN, Recording, record_session


@pytest.fixture(scope="module")
def sim() -> Any:
    with SimulatorThread(tokens=[TOKEN], rate=1000, instruments_per_frame=3,
                         portfolio_rate=200) as sim:
        yield sim


@pytest.fixture(scope="module")
def recording(sim: Any, tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """One recorded session shared by the module's tests (with a small flush interval, so that
    the file has many batches)."""
    path = tmp_path_factory.mktemp("capture") / "session.arrows"
    return record_session(sim, path)
