"""Readers and hubs that come and go: a reader killed mid-read, subscriptions asked for by
readers and counted across them, a hub killed and restarted, the `fastfeed hub` command and its
metrics endpoint."""
from __future__ import annotations

import os
import signal
import urllib.request

import pytest

from fastfeed import HubGoneError, SubscriptionLimitError, attach
from fastfeed.sim import SimulatorThread
from fastfeed.shared.segment import segment_path, socket_path
from shared_helpers import HubProcess, Reader, hub_for, share_name, wait


def test_a_reader_killed_mid_read_harms_nothing() -> None:
    name = share_name()
    with SimulatorThread(rate=200, instruments=20) as sim:
        own, other = sim.instruments[:3], sim.instruments[10:12]
        with hub_for(sim, name, instruments=own) as feed, Reader(name) as calm:
            doomed = Reader(name)
            try:
                assert doomed.ok("subscribe", other, "ltpc") == (other,)
                assert set(other) <= set(feed.subscriptions)
                doomed.ok("spin")
                wait(lambda: feed.stats()["readers"] == 2, what="two readers")
                doomed.process.kill()
                doomed.process.join(30)
            finally:
                doomed.close()
            # Its subscriptions went with it; the hub and the other reader go on.
            wait(lambda: feed.stats()["readers"] == 1, what="the killed reader released")
            wait(lambda: set(feed.subscriptions) == set(own), what="its keys dropped upstream")
            assert feed.connected
            before = feed.store.updates_written
            wait(lambda: feed.store.updates_written > before + 50, what="the hub goes on")
            assert calm.ok("quote", own[0])[0][0] == own[0]
            assert calm.ok("wait_for", own[1], 30)[0] == own[1]


def test_subscriptions_are_served_and_counted_across_readers() -> None:
    name = share_name()
    with SimulatorThread(rate=100, instruments=20) as sim:
        a, b, c, d = sim.instruments[:4]
        with hub_for(sim, name, instruments=[a], mode="ltpc") as feed, \
                Reader(name) as one, Reader(name) as two:
            assert one.ok("subscribe", [b, c], "full") == ([b, c],)
            assert two.ok("subscribe", [c, a], "ltpc") == ([c, a],)
            assert feed.subscriptions == {a: "ltpc", b: "full", c: "full"}
            assert one.ok("wait_for", b, 30)[0] == b  # served: the quote arrives in the reader
            # One reader letting go drops only what nobody else wants; c falls back to the mode
            # the other reader asked for; a was the hub's own and stays.
            assert one.ok("unsubscribe", [b, c, d]) == ([b, c],)
            assert feed.subscriptions == {a: "ltpc", c: "ltpc"}
            assert two.ok("unsubscribe", [a, c]) == ([a, c],)
            assert feed.subscriptions == {a: "ltpc"}
            # The hub checks caps as MarketFeed does; a refusal changes nothing.
            answer = two.ask("subscribe", [d], "full_d30")
            assert answer[:2] == ("error", "SubscriptionLimitError") and "Plus" in answer[2]
            answer = two.ask("subscribe", ["not-a-key"], "full")
            assert answer[:2] == ("error", "ValueError")
            assert feed.subscriptions == {a: "ltpc"}
            shared = attach(name, timeout=10)
            try:
                with pytest.raises(SubscriptionLimitError):
                    shared.subscribe([d], "full_d30")
                assert shared.subscribe([d], "ltpc") == [d]
                assert shared.subscriptions == {d: "ltpc"}
            finally:
                shared.close()  # closing lets go of what it asked for
            wait(lambda: d not in feed.subscriptions, what="d released on close")


def test_a_killed_hub_is_detected_and_replaced_by_the_next(tmp_path: object) -> None:
    name = share_name()
    with SimulatorThread(rate=100) as sim:
        keys = sim.instruments[:3]
        first = HubProcess(sim, name, keys)
        try:
            shared = attach(name, timeout=60)
            wait(lambda: shared.quote(keys[0]) is not None, what="a quote")
            assert shared.generation == 1 and shared.alive
        finally:
            first.stop(signal.SIGKILL)
        assert os.path.exists(segment_path(name))  # stale: nobody unlinked it
        wait(lambda: not shared.alive, what="the reader sees the hub dead")
        with pytest.raises(HubGoneError, match="died"):
            shared.quote(keys[0])
        second = HubProcess(sim, name, keys)
        try:
            second.wait_log("replacing the stale segment")
            again = attach(name, timeout=60)
            assert again.generation == 2 and again.writer_pid == second.process.pid
            wait(lambda: again.quote(keys[0]) is not None, what="a quote from the new hub")
            assert again.subscribe(keys[1:2], "full") == keys[1:2]  # its control socket
            again.close()
        finally:
            assert second.stop() == 0
        assert not os.path.exists(segment_path(name))
        assert not os.path.exists(socket_path(name))


def test_hub_command_serves_metrics_and_shuts_down_cleanly_on_sigterm() -> None:
    name = share_name()
    with SimulatorThread(rate=200) as sim:
        keys = sim.instruments[:4]
        hub = HubProcess(sim, name, keys, "--metrics-port", "0")
        try:
            port = int(hub.wait_log(r"metrics on http://127\.0\.0\.1:(\d+)/metrics").group(1))
            shared = attach(name, timeout=60)
            assert shared.subscribe(keys[:1], "full") == keys[:1]  # on the control socket now
            wait(lambda: shared.stats()["updates"] > 50, what="traffic")

            def scrape() -> dict[str, float]:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                    text = r.read().decode()
                out = {}
                for line in text.splitlines():
                    if line.startswith("fastfeed_") and f'share="{name}"' in line:
                        metric, value = line.rsplit(" ", 1)
                        out[metric.split("{")[0]] = float(value)
                return out

            wait(lambda: scrape().get("fastfeed_receive_lag_seconds_count", 0) > 0,
                 what="the lag histogram folded")
            metrics = scrape()
            for counter in ("frames", "updates", "bytes", "decode_errors", "reconnects",
                            "ring_overruns"):
                assert f"fastfeed_{counter}_total" in metrics
            assert metrics["fastfeed_updates_total"] > 50
            assert metrics["fastfeed_connected"] == 1
            assert metrics["fastfeed_instruments"] == len(keys)
            assert metrics["fastfeed_readers_attached"] == 1
            shared.close()
            wait(lambda: scrape()["fastfeed_readers_attached"] == 0, what="reader gone")
        finally:
            assert hub.stop() == 0  # SIGTERM
        assert not os.path.exists(segment_path(name))
        assert not os.path.exists(socket_path(name))
        assert not any(TOKEN_PART in line for line in hub.log)


TOKEN_PART = "test-token-shared"


def test_hub_command_errors_are_one_line() -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "UPSTOX_ACCESS_TOKEN"}
    out = subprocess.run([sys.executable, "-m", "fastfeed", "hub", "--share", "bad/name"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "error: " in out.stderr and "share name" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
