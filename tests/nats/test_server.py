"""NatsServer's placement options reach the real nats-server process."""
from __future__ import annotations

import os

import pytest

from fastfeed.nats.server import NatsServer


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux affinity")
def test_gomaxprocs_and_cpus_reach_the_process() -> None:
    cpu = min(os.sched_getaffinity(0))
    with NatsServer(gomaxprocs=1, cpus={cpu}) as server:
        assert server.process is not None
        pid = server.process.pid
        assert os.sched_getaffinity(pid) == {cpu}
        with open(f"/proc/{pid}/environ", "rb") as f:
            assert b"GOMAXPROCS=1" in f.read().split(b"\0")
        # Every thread the Go runtime started has the same mask.
        for tid in os.listdir(f"/proc/{pid}/task"):
            assert os.sched_getaffinity(int(tid)) == {cpu}


def test_bad_placement_is_refused() -> None:
    with pytest.raises(ValueError, match="gomaxprocs"):
        NatsServer(gomaxprocs=0)
    with pytest.raises(ValueError, match="cpus"):
        NatsServer(cpus=[])
