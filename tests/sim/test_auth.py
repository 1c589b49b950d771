"""Authorization as Upstox does it: redirects to one-time URLs, authorize JSON, 401/403/429/503."""
from __future__ import annotations

import asyncio
import http.client
import json
import re
from urllib.parse import urlsplit

import pytest
import websockets

from fastfeed.sim import Simulator

from sim_helpers import PLUS, TOKEN, connect, recv_feed, run, wait_until

FEEDS_RE = r"/market-data-feeder/v3/upstox-developer-api/feeds\?requestId=[0-9a-f-]{36}&code=[0-9a-f]+$"


def http_get(url: str, token: str | None = TOKEN, ctx=None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme in ("https", "wss") else http.client.HTTPConnection
    kwargs = {"context": ctx} if ctx is not None else {}
    conn = cls(parts.hostname, parts.port, timeout=5, **kwargs)
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


async def ahttp(*args, **kwargs) -> tuple[int, dict[str, str], bytes]:
    # The server runs on this test's event loop: a blocking client must run in a thread.
    return await asyncio.to_thread(http_get, *args, **kwargs)


async def status_of(url: str, token: str = TOKEN, **kwargs) -> int:
    try:
        async with connect(url, token, **kwargs):
            return 101
    except websockets.exceptions.InvalidStatus as exc:
        return exc.response.status_code


@pytest.mark.parametrize("status", [302, 307])
def test_upgrade_is_redirected_to_a_one_time_url_on_the_same_server(status: int) -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], redirect_status=status) as sim:
            code, headers, _ = await ahttp(sim.market_url.replace("ws://", "http://"))
            assert code == status
            location = headers["Location"]
            assert location.startswith(sim.base_url)
            assert re.search(FEEDS_RE, location)
            # the client follows it, sending its header again, and gets the feed
            async with connect(sim.market_url) as ws:
                assert (await recv_feed(ws)).type == 2  # market_info
            assert sim.counters.redirects == 2
    run(main())


def test_bad_missing_and_expired_tokens_get_401() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN]) as sim:
            assert await status_of(sim.market_url, "wrong") == 401
            code, _, body = await ahttp(sim.market_url.replace("ws://", "http://"), token=None)
            assert code == 401 and json.loads(body)["status"] == "error"
            assert await status_of(sim.market_url) == 101
            sim.expire_token(TOKEN)
            assert await status_of(sim.market_url) == 401
            code, _, _ = await ahttp(sim.authorize_url())
            assert code == 401
    run(main())


def test_token_expired_between_redirect_and_upgrade_gets_401() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN]) as sim:
            _, _, body = await ahttp(sim.authorize_url())
            uri = json.loads(body)["data"]["authorized_redirect_uri"]
            sim.expire_token(TOKEN)
            assert await status_of(uri) == 401
    run(main())


def test_used_unknown_or_foreign_codes_get_403() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN, "other"]) as sim:
            _, headers, _ = await ahttp(sim.market_url.replace("ws://", "http://"))
            location = headers["Location"]
            assert await status_of(location) == 101
            assert await status_of(location) == 403  # used
            assert await status_of(location.replace("code=", "code=0")) == 403  # unknown
            _, headers, _ = await ahttp(sim.market_url.replace("ws://", "http://"))
            assert await status_of(headers["Location"], "other") == 403  # another token's code
    run(main())


def test_authorize_returns_upstox_json_with_a_fresh_uri_each_time() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN]) as sim:
            status, headers, body = await ahttp(sim.authorize_url())
            assert status == 200 and headers["Content-Type"] == "application/json"
            doc = json.loads(body)
            assert doc["status"] == "success"
            uri = doc["data"]["authorized_redirect_uri"]
            assert uri == doc["data"]["authorizedRedirectUri"]
            assert uri.startswith("ws://127.0.0.1:") and re.search(FEEDS_RE, uri)
            _, _, body2 = await ahttp(sim.authorize_url())
            assert json.loads(body2)["data"]["authorized_redirect_uri"] != uri
            async with connect(uri) as ws:
                assert (await recv_feed(ws)).type == 2
            assert sim.counters.authorize_calls == 2
    run(main())


def test_portfolio_redirect_and_authorize_carry_update_types() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], portfolio_rate=200) as sim:
            status, headers, _ = await ahttp(
                sim.portfolio_url_for(["position"]).replace("ws://", "http://"))
            assert status == 302 and "/portfolio-stream-feeder/" in headers["Location"]
            status, _, body = await ahttp(sim.authorize_url("portfolio", ["holding", "gtt_order"]))
            uri = json.loads(body)["data"]["authorizedRedirectUri"]
            async with connect(uri) as ws:
                for _ in range(5):
                    update = json.loads(await ws.recv())
                    assert update["update_type"] in ("holding", "gtt_order")
    run(main())


def test_connection_cap_refuses_the_excess_with_429_and_frees_on_close() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], plus_tokens=[PLUS]) as sim:
            async with connect(sim.market_url) as a, connect(sim.market_url) as b:
                await recv_feed(a), await recv_feed(b)
                assert await status_of(sim.market_url) == 429
                # the portfolio feed has caps of its own
                assert await status_of(sim.portfolio_url) == 101
            # both closed: room again (the server notices the close asynchronously)
            await wait_until(lambda: not sim.market_sessions, timeout=10,
                             what="the server noticed both closes")
            assert await status_of(sim.market_url) == 101
            conns = [await connect(sim.market_url, PLUS).__aenter__() for _ in range(5)]
            assert await status_of(sim.market_url, PLUS) == 429
            for ws in conns:
                await ws.close()
            assert sim.counters.connections_refused == 2
    run(main())


def test_any_token_is_accepted_when_none_is_configured() -> None:
    async def main() -> None:
        async with Simulator() as sim:
            assert await status_of(sim.market_url, "whatever-token") == 101
            code, _, _ = await ahttp(sim.authorize_url(), token=None)
            assert code == 401
    run(main())


def test_refuse_connections_answers_503_for_a_while() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN]) as sim:
            # A window far longer than the requests take, ended on purpose: no race with the clock.
            sim.refuse_connections(60)
            assert await status_of(sim.market_url) == 503
            assert (await ahttp(sim.authorize_url()))[0] == 503
            sim.refuse_connections(0)
            assert await status_of(sim.market_url) == 101
            assert sim.counters.faults["refuse_connections"] == 2
    run(main())


def test_tls_serves_a_certificate_clients_can_verify() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], tls=True) as sim:
            assert sim.base_url.startswith("wss://") and sim.ca_pem.startswith(b"-----BEGIN")
            ctx = sim.client_ssl_context()
            status, _, body = await ahttp(sim.authorize_url(), ctx=ctx)
            assert json.loads(body)["data"]["authorized_redirect_uri"].startswith("wss://")
            async with connect(sim.market_url, ssl=ctx) as ws:
                assert (await recv_feed(ws)).type == 2
            # a client that does not trust the CA fails the handshake
            import ssl
            with pytest.raises(ssl.SSLCertVerificationError):
                async with connect(sim.market_url, ssl=ssl.create_default_context()):
                    pass
    run(main())
