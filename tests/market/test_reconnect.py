"""Reconnects after every fault the simulator injects: a fresh redirect each time, every
subscription restored in its mode, a gap event, rows stale until their next update."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

import fastfeed

from fastfeed import Gap, ReconnectPolicy, ReconnectStoppedError
from fastfeed.sim import Faults, Simulator

from market_helpers import KEYS, TOKEN, Recorder, feed_for, run, wait_until

WANTED = {KEYS[0]: "full", KEYS[1]: "full", KEYS[2]: "ltpc", KEYS[3]: "option_greeks"}

# Faults that end a connection; the server-side ping settings make the ping faults bite.
ENDINGS: dict[str, dict[str, Any]] = {
    "abort_after_frames": dict(faults=Faults(abort_after_frames=8)),
    "abort_after_seconds": dict(faults=Faults(abort_after_seconds=0.3)),
    "close_after_frames_1000": dict(faults=Faults(close_after_frames=8, close_code=1000)),
    "close_after_frames_1011": dict(faults=Faults(close_after_frames=8, close_code=1011)),
    "close_after_seconds": dict(faults=Faults(close_after_seconds=0.3, close_code=1012)),
    # The server pings when the client is idle and closes when our PONGs are not counted.
    "ignore_pongs": dict(faults=Faults(ignore_pongs=True), ping_interval=0.2, ping_timeout=0.2),
    # Data stops and our PINGs go unanswered: the client must declare the connection dead.
    "ignore_pings": dict(faults=Faults(ignore_pings=True, stall_seconds=30, stall_after_frames=8),
                         client_ping=(0.2, 0.2)),
}


def newest(sim: Simulator) -> Any:
    return max(sim.market_sessions, key=lambda s: s.serial)


async def subscribe_all(feed: Any) -> None:
    feed.subscribe([KEYS[0], KEYS[1]], "full")
    feed.subscribe([KEYS[2]], "ltpc")
    feed.subscribe([KEYS[3]], "option_greeks")


@pytest.mark.parametrize("kind", list(ENDINGS))
def test_reconnects_after_fault_with_every_subscription_restored(kind: str) -> None:
    spec = dict(ENDINGS[kind])
    faults = spec.pop("faults")
    client_ping = spec.pop("client_ping", (10.0, 5.0))
    sim_kwargs = {"ping_interval": None, **spec}

    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=100, faults=faults, **sim_kwargs) as sim:
            feed = feed_for(sim, ping_interval=client_ping[0], ping_timeout=client_ping[1])
            rec = Recorder(feed)
            await subscribe_all(feed)
            async with feed:
                first = newest(sim)
                sim.faults = Faults()  # the next connections are healthy
                await wait_until(lambda: all(feed.quote(k) for k in WANTED), what="first quotes")
                await wait_until(lambda: feed.reconnects >= 1, what=f"reconnect after {kind}")
                await wait_until(lambda: sim.market_sessions and newest(sim) is not first
                                 and newest(sim).subscriptions == WANTED, what="resubscribed")
                await wait_until(lambda: rec.named("gap"), what="gap event")
                gap: Gap = rec.named("gap")[0][0]
                assert gap.restarted_ns >= gap.stopped_ns > 0 and gap.attempts >= 1
                names = rec.names()
                assert names.index("close") < names.index("reconnecting") < names.index("gap")
                assert names.count("open") >= 2
                # every row was marked stale at the loss and clears on its next update
                await wait_until(lambda: all(not feed.quote(k).stale for k in WANTED), what="fresh")
                assert sim.counters.redirects >= 2  # a fresh redirect for the new connection
                if kind == "ignore_pings":
                    assert feed.stats()["pings_sent"] >= 1
                    assert "no PONG" in rec.named("close")[0][1]
                assert feed.stats()["decode_errors"] == 0
    run(main())


def test_rows_are_stale_between_loss_and_next_update() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=50, ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:2], mode="ltpc",
                            reconnect=ReconnectPolicy(initial_delay=0.5, jitter=0, max_attempts=3))
            closed = asyncio.Event()
            feed.on("close", lambda code, reason: closed.set())
            async with feed:
                await feed.wait_for(KEYS[1], timeout=5)
                assert not feed.quote(KEYS[0]).stale
                sim.abort_all()
                await asyncio.wait_for(closed.wait(), 5)
                assert feed.quote(KEYS[0]).stale and feed.quote(KEYS[1]).stale
                assert feed.snapshot["flags"].all()
                await wait_until(lambda: not feed.quote(KEYS[0]).stale, what="fresh again")
    run(main())


def test_refused_connections_are_retried_with_backoff() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=50, ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:2], mode="ltpc")
            rec = Recorder(feed)
            async with feed:
                await feed.wait_for(KEYS[0], timeout=5)
                sim.refuse_connections(0.4)
                sim.abort_all()
                await wait_until(lambda: feed.reconnects == 1 and feed.connected, what="back")
                assert feed.failed_attempts >= 1 and sim.counters.http_status[503] >= 1
                assert any("503" in str(args[0]) for args in rec.named("error"))
                messages = [args[0] for args in rec.named("reconnecting")]
                assert messages[0] == "Auto reconnect attempt 1/20"
                await wait_until(lambda: newest(sim).subscriptions == {k: "ltpc" for k in KEYS[:2]})
    run(main())


def test_sdk_default_policy_gives_up_after_five_attempts() -> None:
    policy = ReconnectPolicy.sdk_defaults()
    assert [policy.delay(n) for n in range(1, 6)] == [1.0] * 5
    assert policy.allows(5) and not policy.allows(6)

    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=50, ping_interval=None) as sim:
            fast_sdk = ReconnectPolicy(initial_delay=0.01, max_delay=0.01, multiplier=1.0, jitter=0.0,
                                       max_attempts=5)
            feed = feed_for(sim, instruments=KEYS[:1], reconnect=fast_sdk)
            rec = Recorder(feed)
            async with feed:
                sim.refuse_connections(60)
                sim.abort_all()
                with pytest.raises(ReconnectStoppedError, match="retryCount of 5 exhausted"):
                    await asyncio.wait_for(feed.wait_closed(), 10)
                assert len(rec.named("reconnecting")) == 5
                assert rec.named("autoReconnectStopped") == [("retryCount of 5 exhausted.",)]
                assert not feed.running
    run(main())


def test_backoff_grows_and_is_jittered() -> None:
    policy = ReconnectPolicy(initial_delay=1.0, max_delay=8.0, multiplier=2.0, jitter=0.25)
    delays = [policy.delay(n) for n in range(1, 8)]
    for n, d in enumerate(delays, 1):
        base = min(8.0, 2.0 ** (n - 1))
        assert base * 0.75 <= d <= base * 1.25
    assert len({policy.delay(3) for _ in range(20)}) > 1


def test_faults_that_keep_the_connection() -> None:
    """Malformed, fragmented and oversized frames and a stall: errors reported, no reconnect."""
    async def main() -> None:
        # The stall outlasts the client's ping interval, so a PING goes out in it; a whole second
        # for its PONG keeps a loaded machine from declaring the connection dead.
        faults = Faults(malformed_every=5, fragment_size=64, oversized_every=20,
                        oversized_instruments=300, stall_seconds=2.0, stall_after_frames=40)
        async with Simulator(tokens=[TOKEN], rate=200, faults=faults, ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:3], mode="full", max_instruments=200,
                            ping_interval=1.0, ping_timeout=1.0)
            rec = Recorder(feed)
            async with feed:
                await wait_until(lambda: sim.counters.faults["stall_seconds"] == 1, what="stall")
                await wait_until(lambda: feed.stats()["pongs_received"] >= 1, what="pings in stall")
                await wait_until(lambda: feed.stats()["live_feed"] >= 60, timeout=15, what="data")
                stats = feed.stats()
                assert stats["connections"] == 1 and stats["reconnects"] == 0
                assert stats["fragments"] > 0
                errors = [args[0] for args in rec.named("error")]
                kinds = {type(e).__name__ for e in errors}
                assert kinds == {"DecodeError", "InstrumentLimitError"}
                decode_errors = [e for e in errors if isinstance(e, fastfeed.DecodeError)]
                assert stats["decode_errors"] == len(decode_errors)
                # each instrument past max_instruments is reported once, however often it comes
                refused = [e.key for e in errors if isinstance(e, fastfeed.InstrumentLimitError)]
                assert len(refused) == len(set(refused)) == feed.decoder.rejected_keys
                # the good frames and every instrument kept going
                assert all(feed.quote(k).updates > 1 for k in KEYS[:3])
                assert not rec.named("close") and not rec.named("gap")
    run(main())
