"""Tokens, 401/403, authorize, TLS, and the token kept out of logs, reprs and exceptions."""
from __future__ import annotations

import asyncio
import logging
import pickle
import ssl

import pytest

from fastfeed import (AuthenticationError, FeedConnectionError, MarketFeed, ReconnectPolicy,
                      ReconnectStoppedError)
from fastfeed.sim import Simulator
from fastfeed.sim.auth import fingerprint as sim_fingerprint
from fastfeed.transport import Secret

from market_helpers import KEYS, OTHER, TOKEN, Recorder, feed_for, run, wait_until


def test_401_stops_at_once_with_an_event_and_an_exception() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], ping_interval=None) as sim:
            feed = feed_for(sim, "not-a-valid-token", instruments=KEYS[:1])
            rec = Recorder(feed)
            with pytest.raises(AuthenticationError) as info:
                await feed.connect()
            assert info.value.status == 401
            assert sim.counters.http_status[401] == 1  # not retried
            assert rec.named("autoReconnectStopped") and "401" in rec.named("autoReconnectStopped")[0][0]
            assert isinstance(rec.named("error")[0][0], AuthenticationError)
            assert not feed.running
    run(main())


def test_403_for_an_expired_redirect_code_stops_too() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], ping_interval=None, code_ttl=0.0) as sim:
            feed = feed_for(sim, instruments=KEYS[:1])
            with pytest.raises(AuthenticationError) as info:
                await feed.connect()
            assert info.value.status == 403 and sim.counters.http_status[403] == 1
    run(main())


def test_token_expiring_while_connected_stops_reconnects_and_wakes_waiters() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=50, ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:2])
            async with feed:
                await feed.wait_for(KEYS[0], timeout=5)

                async def consume() -> None:
                    async for _ in feed.updates():
                        pass

                consumer = asyncio.ensure_future(consume())
                never = asyncio.ensure_future(feed.wait_for("NSE_EQ|NEVER", timeout=10))
                await asyncio.sleep(0.05)
                sim.expire_token(TOKEN)
                sim.abort_all()
                with pytest.raises(AuthenticationError):
                    await asyncio.wait_for(feed.wait_closed(), 5)
                with pytest.raises(AuthenticationError):
                    await asyncio.wait_for(consumer, 5)
                with pytest.raises(AuthenticationError):
                    await asyncio.wait_for(never, 5)
    run(main())


@pytest.mark.parametrize("provider_kind", ["plain", "async"])
def test_token_provider_is_asked_before_every_connect(provider_kind: str) -> None:
    calls: list[str] = []
    tokens = iter([TOKEN, OTHER, OTHER, OTHER])

    def plain() -> str:
        calls.append("x")
        return next(tokens)

    async def asynchronous() -> str:
        await asyncio.sleep(0)
        return plain()

    async def main() -> None:
        async with Simulator(tokens=[TOKEN, OTHER], rate=50, ping_interval=None) as sim:
            provider = plain if provider_kind == "plain" else asynchronous
            feed = MarketFeed(token_provider=provider, url=sim.market_url, instruments=KEYS[:1],
                              reconnect=ReconnectPolicy(initial_delay=0.05, jitter=0))
            async with feed:
                await feed.wait_for(KEYS[0], timeout=5)
                sim.expire_token(TOKEN)  # the daily rollover: the old token gets 401 from now on
                sim.abort_all()
                await wait_until(lambda: feed.reconnects == 1 and feed.connected, what="rolled over")
                await wait_until(lambda: sim.market_sessions, what="session")
                assert len(calls) == 2
                assert sim.market_sessions[0].grant.fingerprint == sim_fingerprint(OTHER)
    run(main())


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_authorize_first_through_the_rest_endpoint(tls: bool) -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=50, tls=tls, ping_interval=None) as sim:
            feed = feed_for(sim, authorize=True, instruments=KEYS[:2], mode="full")
            async with feed:
                await feed.wait_for(KEYS[1], timeout=5)
                sim.abort_all()
                await wait_until(lambda: feed.reconnects == 1 and feed.connected, what="reconnect")
            assert sim.counters.authorize_calls == 2 and sim.counters.redirects == 0
    run(main())


def test_authorize_with_a_bad_token_is_401() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], ping_interval=None) as sim:
            feed = feed_for(sim, "wrong-token-abc", authorize=True)
            with pytest.raises(AuthenticationError, match="401"):
                await feed.connect()
    run(main())


def test_tls_verification_is_on_by_default() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], tls=True, ping_interval=None) as sim:
            # No ssl= argument: the default context does not trust the simulator's private CA.
            feed = MarketFeed(TOKEN, url=sim.market_url, reconnect=ReconnectPolicy.disabled())
            rec = Recorder(feed)
            with pytest.raises(ReconnectStoppedError):
                await feed.connect()
            error = rec.named("error")[0][0]
            assert isinstance(error, FeedConnectionError) and "CERTIFICATE_VERIFY_FAILED" in str(error)
            assert sim.counters.connections_opened == 0
    run(main())


def test_turning_verification_off_takes_an_argument_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)

    async def main() -> None:
        async with Simulator(tokens=[TOKEN], tls=True, rate=50, ping_interval=None) as sim:
            feed = MarketFeed(TOKEN, url=sim.market_url, ssl=False, instruments=KEYS[:1])
            async with feed:
                await feed.wait_for(KEYS[0], timeout=5)
    run(main())
    assert any("verification is OFF" in r.getMessage() for r in caplog.records)


def test_token_never_in_logs_reprs_or_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(1)  # everything, including picows's below-DEBUG upgrade request
    secret = "s3cr3t-token-XYZ-0000000000"
    wrong = "wrong-s3cr3t-token-QQQ-000000"
    seen: list[str] = []

    async def main() -> None:
        async with Simulator(tokens=[secret], rate=50, ping_interval=None) as sim:
            feed = feed_for(sim, secret, instruments=KEYS[:2])
            feed.on("error", lambda exc: seen.append(repr(exc) + str(exc)))
            async with feed:
                await feed.wait_for(KEYS[0], timeout=5)
                sim.abort_all()
                await wait_until(lambda: feed.reconnects == 1 and feed.connected)
                seen.append(repr(feed) + str(feed.stats()) + repr(vars(feed)))
            bad = feed_for(sim, wrong, authorize=True)
            with pytest.raises(AuthenticationError) as info:
                await bad.connect()
            seen.append(repr(info.value) + str(info.value) + repr(vars(bad)))
            bad = feed_for(sim, wrong)
            with pytest.raises(AuthenticationError) as info:
                await bad.connect()
            seen.append(repr(info.value) + str(info.value))

    run(main())
    # The simulator stands in for Upstox's server, whose own logs are not the client's business.
    client = [r for r in caplog.records if "fastfeed.sim" not in r.name]
    text = "".join(f"{r.name} {r.getMessage()}\n" for r in client) + "".join(seen)
    assert "Send upgrade request" in text and "Bearer tok-" in text  # the logging did happen
    assert secret not in text and wrong not in text
    with pytest.raises(TypeError):
        pickle.dumps(Secret(secret))


def test_insecure_ssl_context_given_explicitly_warns(caplog: pytest.LogCaptureFixture) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    MarketFeed(TOKEN, ssl=ctx)
    assert any("does not verify" in r.getMessage() for r in caplog.records)
