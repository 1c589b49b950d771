"""The hub's NATS options, parsed and started against a real nats-server."""
from __future__ import annotations

import argparse

import pytest

from fastfeed.nats.cli import add_nats_arguments, start_bridge
from feed_helpers import run
from nats_helpers import hub_for, wait_until


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_nats_arguments(p)
    return p


def test_options_parse_and_a_bad_prefix_is_a_one_line_error(capsys):
    args = parser().parse_args(["--nats", "nats://127.0.0.1:4222", "--subject-prefix", "desk.a"])
    assert (args.nats, args.subject_prefix) == ("nats://127.0.0.1:4222", "desk.a")
    assert parser().parse_args([]).subject_prefix == "upstox"
    with pytest.raises(SystemExit):
        parser().parse_args(["--subject-prefix", "a b"])
    assert "subject prefix" in capsys.readouterr().err


def test_start_bridge_publishes_the_feed(sim, nats_server):
    args = parser().parse_args(["--nats", nats_server.url, "--subject-prefix", "cli"])

    async def main() -> None:
        async with hub_for(sim) as hub:
            bridge = await start_bridge(hub, args)
            try:
                assert bridge.prefix == "cli"
                await wait_until(lambda: bridge.published > 50, 20, "published")
            finally:
                await bridge.close()
            assert await start_bridge(hub, parser().parse_args([])) is None
    run(main(), 60)
