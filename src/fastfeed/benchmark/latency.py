"""Wire-to-callback latency over loopback, every client side by side in one run.

A minimal picows server (its own process, pinned to CPU 1, spinning between frames so that its
own wake-ups stay out of the figures) sends one ``full`` instrument per frame at a fixed rate
and writes its CLOCK_MONOTONIC time into each frame's ``currentTs`` (ns) just before the frame
is encoded and written. Each client runs in its own process, pinned to
CPU 0, and records ``time.monotonic_ns()`` minus that time as the first thing its callback does:

- ``on_update``: MarketFeed, an ``on_update`` callback (the frame's records);
- ``on_quote``: MarketFeed, an ``on_quote`` callback (the instrument's Quote);
- ``busy_poll``: MarketFeed(busy_poll=True), an ``on_update`` callback;
- ``busy_poll+on_quote``: MarketFeed(busy_poll=True), an ``on_quote`` callback;
- ``sdk``: the official MarketDataStreamerV3 (only its URL pointed here), its ``message`` event;
- ``websockets+upb``: ``websockets`` on uvloop, after ``FeedResponse.FromString`` of each frame;
- ``picows``: a bare picows listener on uvloop that reads the clock first and only then parses
  the frame (upb), the floor of any client on this transport: what is left is the machine
  waking the process up and the socket's path.

Percentiles (p50, p90, p99, p99.9) are numpy's over the samples, the first frames of each run
left out as warm-up; the clients take turns, a few rounds each, so that the machine's load
changing meanwhile weighs on all of them alike. For the MarketFeed clients the row also gives
what ``stats()`` reports as fastfeed's own share: the frame's arrival in the listener to the
callback's start. A last line gives the machine's floor under that share (``cold_floor``): what
two clock reads and one frame's decode cost on the clients' CPU right after it slept 1 ms, and
after 1 ms of spinning.

    python -m fastfeed bench --latency
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

TOKEN = "latency-bench-token"
KEY = "NSE_FO|40000"
FEED_CLIENTS = ("on_update", "on_quote", "busy_poll", "busy_poll+on_quote")  # MarketFeed's
CLIENTS = (*FEED_CLIENTS, "sdk", "websockets+upb", "picows")
RATES = (1_000, 10_000)
WARMUP = 200          # frames at the start of each run left out of the percentiles
# Frames per client and round at least: a p99 over fewer than a few thousand samples moves
# with a handful of them.
MIN_FRAMES = 3_000
SERVER_CPU, CLIENT_CPU = 1, 0
PERCENTILES = (50, 90, 99, 99.9)
_POOL = 64            # distinct frames the server cycles through


def _pin(cpu: int) -> None:
    """Pin this process to `cpu` where the platform allows and the CPU exists."""
    if hasattr(os, "sched_setaffinity") and cpu in os.sched_getaffinity(0) and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {cpu})


# -- the server (its own process) -------------------------------------------------------------------
def frame_prefixes(n: int = _POOL) -> list[bytes]:
    """`n` one-instrument ``full`` FeedResponse frames without ``currentTs`` (field 3), which
    the server appends to each as it sends it."""
    from fastfeed.benchmark.frames import frame
    from fastfeed.proto import fastfeed_market_v3_pb2 as pb

    out = []
    for seed in range(n):
        resp = pb.FeedResponse.FromString(frame([KEY], "full", seed=seed))
        resp.ClearField("currentTs")
        out.append(resp.SerializeToString())
    return out


_stamp: Any = None    # the reused FeedResponse that encodes currentTs alone


def stamped(prefix: bytes, ts: int) -> bytes:
    """`prefix` with ``currentTs = ts`` appended (tag 0x18, a varint; a message's encoded fields
    concatenate). The server takes the time just before this, so what it costs counts as every
    client's latency: protobuf encodes the one field through one reused message, about 5x
    faster than a Python loop over the varint's bytes."""
    global _stamp
    if _stamp is None:
        from fastfeed.proto import fastfeed_market_v3_pb2 as pb

        _stamp = pb.FeedResponse()
    _stamp.currentTs = ts
    return prefix + _stamp.SerializeToString()


async def _serve(rate: int, frames: int) -> None:
    from picows import WSListener, WSMsgType, ws_create_server

    prefixes = frame_prefixes()
    period = 1_000_000_000 // rate
    done = asyncio.get_running_loop().create_future()

    async def push(transport: Any) -> None:
        # Spin to each send time (blocking: this loop has nothing else to do), never sleeping:
        # a server whose CPU idled between frames sends each from cold caches, and that cost
        # (about 5-10 us at 1,000 frames/s on a 2-vCPU VM) would count as every client's
        # latency. The timestamp is taken right before the frame is built and written.
        monotonic_ns = time.monotonic_ns
        due = monotonic_ns()
        try:
            for i in range(frames):
                due += period
                while monotonic_ns() < due:
                    pass
                transport.send(WSMsgType.BINARY, stamped(prefixes[i % _POOL], monotonic_ns()))
                await asyncio.sleep(0)  # a turn of the loop: writes flushed, pings answered
                if monotonic_ns() - due > 100 * period:
                    due = monotonic_ns()  # far behind (a stalled client): no catch-up burst
            transport.send_close(1000)
            transport.disconnect()  # after what is still buffered for a slow client
            await transport.wait_disconnected()
        finally:
            if not done.done():
                done.set_result(None)

    class Pusher(WSListener):  # type: ignore[misc]
        started = False

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            t = frame.msg_type
            if t in (WSMsgType.BINARY, WSMsgType.TEXT) and not self.started:
                self.started = True  # the subscription request: start pushing
                asyncio.get_running_loop().create_task(push(transport))
            elif t == WSMsgType.PING:
                transport.send_pong(frame.get_payload_as_bytes())
            elif t == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    server = await ws_create_server(lambda request: Pusher(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"ws://127.0.0.1:{port}", flush=True)
    await done
    server.close()


def server_main(rate: int, frames: int, cpu: int = SERVER_CPU) -> None:
    from fastfeed.loop import new_event_loop

    _pin(cpu)
    loop = new_event_loop()
    try:
        loop.run_until_complete(_serve(rate, frames))
    finally:
        loop.close()


# -- clients (each in its own process) --------------------------------------------------------------
def _client_feed(url: str, frames: int, how: str) -> dict[str, Any]:
    import numpy as np

    from fastfeed import MarketFeed, ReconnectPolicy
    from fastfeed.loop import new_event_loop

    samples = np.zeros(frames, dtype=np.int64)
    n = [0]
    monotonic_ns = time.monotonic_ns

    def on_update(records: Any) -> None:
        now = monotonic_ns()
        i = n[0]
        if i < frames:
            samples[i] = now - records["server_ts"][-1]
            n[0] = i + 1

    def on_quote(quote: Any) -> None:
        now = monotonic_ns()
        i = n[0]
        if i < frames:
            samples[i] = now - quote.server_ts
            n[0] = i + 1

    async def main() -> dict[str, Any]:
        feed = MarketFeed(TOKEN, url=url + "/v3/feed/market-data-feed", instruments=[KEY],
                          mode="full", ping_interval=None, reconnect=ReconnectPolicy.disabled(),
                          busy_poll=how.startswith("busy_poll"))
        quotes = how.endswith("on_quote")
        if quotes:
            feed.on_quote(KEY, on_quote)
        else:
            feed.on_update(on_update)
        await feed.connect()
        try:
            await feed.wait_closed()
        except Exception:  # the server's close after the last frame ends the run
            pass
        # What stats() reports as fastfeed's own share (its last 4096 samples, ns).
        own = feed._callbacks.samples_ns("on_quote" if quotes else "on_update")
        return {"samples": samples[:n[0]].tolist(), "errors": feed.decoder.errors,
                "own": own.tolist()}

    loop = new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def _client_sdk(url: str, frames: int) -> dict[str, Any]:
    from types import SimpleNamespace

    import numpy as np
    import upstox_client
    import websocket
    from upstox_client.feeder import MarketDataStreamerV3, market_data_feeder_v3

    upstox = "wss://api.upstox.com"

    def app(u: str, *args: Any, **kwargs: Any) -> Any:  # only the URL changes
        return websocket.WebSocketApp(url + u[len(upstox):], *args, **kwargs)

    market_data_feeder_v3.websocket = SimpleNamespace(WebSocketApp=app, ABNF=websocket.ABNF)
    configuration = upstox_client.Configuration()
    configuration.access_token = TOKEN
    streamer = MarketDataStreamerV3(upstox_client.ApiClient(configuration), [KEY], "full")
    streamer.auto_reconnect(False)
    samples = np.zeros(frames, dtype=np.int64)
    n = [0]
    monotonic_ns = time.monotonic_ns
    done = threading.Event()

    def on_message(message: dict[str, Any]) -> None:
        now = monotonic_ns()
        i = n[0]
        if i < frames:
            samples[i] = now - int(message["currentTs"])
            n[0] = i + 1

    streamer.on("message", on_message)
    streamer.on("close", lambda *a: done.set())
    streamer.on("error", lambda *a: done.set())
    streamer.connect()
    done.wait(600)
    streamer.disconnect()
    return {"samples": samples[:n[0]].tolist(), "errors": 0}


def _client_websockets(url: str, frames: int) -> dict[str, Any]:
    import numpy as np
    import websockets

    from fastfeed.loop import new_event_loop
    from fastfeed.proto import fastfeed_market_v3_pb2 as pb
    from fastfeed.transport.requests import request

    samples = np.zeros(frames, dtype=np.int64)
    parse = pb.FeedResponse.FromString
    monotonic_ns = time.monotonic_ns

    async def main() -> dict[str, Any]:
        n = 0
        async with websockets.connect(url + "/v3/feed/market-data-feed",
                                      additional_headers={"Authorization": f"Bearer {TOKEN}"},
                                      compression=None, ping_interval=None) as ws:
            await ws.send(request("sub", [KEY], "full"))
            try:
                while True:
                    msg = parse(await ws.recv())
                    now = monotonic_ns()
                    if n < frames:
                        samples[n] = now - msg.currentTs
                        n += 1
            except websockets.exceptions.ConnectionClosed:
                pass
        return {"samples": samples[:n].tolist(), "errors": 0}

    loop = new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def _client_picows(url: str, frames: int) -> dict[str, Any]:
    import numpy as np
    from picows import WSListener, WSMsgType, ws_connect

    from fastfeed.loop import new_event_loop
    from fastfeed.proto import fastfeed_market_v3_pb2 as pb
    from fastfeed.transport.requests import request

    samples = np.zeros(frames, dtype=np.int64)
    parse = pb.FeedResponse.FromString
    monotonic_ns = time.monotonic_ns
    n = [0]

    class Bare(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: Any) -> None:
            transport.send(WSMsgType.BINARY, request("sub", [KEY], "full"))

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            now = monotonic_ns()
            if frame.msg_type == WSMsgType.BINARY:
                i = n[0]
                if i < frames:
                    samples[i] = now - parse(frame.get_payload_as_bytes()).currentTs
                    n[0] = i + 1
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    async def main() -> dict[str, Any]:
        transport, _ = await ws_connect(Bare, url + "/v3/feed/market-data-feed",
                                        extra_headers={"Authorization": f"Bearer {TOKEN}"})
        await transport.wait_disconnected()
        return {"samples": samples[:n[0]].tolist(), "errors": 0}

    loop = new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


_OTHER_CLIENTS = {"sdk": _client_sdk, "websockets+upb": _client_websockets,
                  "picows": _client_picows}


def client_main(kind: str, url: str, frames: int, cpu: int = CLIENT_CPU) -> dict[str, Any]:
    _pin(cpu)
    if kind in _OTHER_CLIENTS:
        return _OTHER_CLIENTS[kind](url, frames)
    if kind in FEED_CLIENTS:
        return _client_feed(url, frames, kind)
    raise ValueError(f"unknown client {kind!r}; known: {', '.join(CLIENTS)}")


# -- the machine's floor -------------------------------------------------------------------------
FLOOR_SLEEP = 0.001   # s: a gap between frames at 1,000 frames/s


def floor_main(samples: int = 2000, cpu: int = CLIENT_CPU) -> dict[str, dict[str, list[float]]]:
    """What this CPU charges any code right after it idled, in a process pinned where the clients
    run: each sample waits ``FLOOR_SLEEP`` (asleep in epoll, or spinning on the clock), then
    times two clock reads in a row ("clock") and one ``FeedDecoder.decode`` of a one-instrument
    ``full`` frame ("decode"). Percentiles in µs, as ``percentiles``."""
    import select

    from fastfeed import FeedDecoder

    _pin(cpu)
    frames = [stamped(p, 1) for p in frame_prefixes()]
    decoder = FeedDecoder(16, 1024)
    for f in frames:
        decoder.decode(f)
    epoll = select.epoll()
    now = time.monotonic_ns
    out: dict[str, dict[str, list[float]]] = {}
    for how in ("asleep", "spinning"):
        clock, decode = [], []
        for i in range(samples + WARMUP):
            if how == "asleep":
                epoll.poll(FLOOR_SLEEP)
            else:
                due = now() + int(FLOOR_SLEEP * 1e9)
                while now() < due:
                    pass
            f = frames[i % _POOL]
            t0 = now()
            t1 = now()
            decoder.decode(f)
            t2 = now()
            if i >= WARMUP:
                clock.append(t1 - t0)
                decode.append(t2 - t1)
        out[how] = {"clock": list(percentiles(clock).values()),
                    "decode": list(percentiles(decode).values())}
    return out


def cold_floor(samples: int = 2000) -> dict[str, dict[str, list[float]]]:
    """``floor_main`` in a process of its own (pinned as a client is)."""
    code = ("import json, sys; from fastfeed.benchmark.latency import floor_main; "
            "print(json.dumps(floor_main(int(sys.argv[1]))))")
    out = subprocess.run([sys.executable, "-c", code, str(samples)], capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"the floor measurement failed: {out.stderr[-2000:]}")
    result: dict[str, dict[str, list[float]]] = json.loads(out.stdout)
    return result


def format_floor(floor: dict[str, dict[str, list[float]]]) -> str:
    def pair(values: list[float]) -> str:
        return f"{values[0]:.1f} / {values[2]:.1f}"  # p50 / p99

    asleep, spinning = floor["asleep"], floor["spinning"]
    return (f"CPU {CLIENT_CPU} right after {FLOOR_SLEEP * 1e3:g} ms asleep in epoll (spinning "
            f"instead), µs p50 / p99: two clock reads in a row {pair(asleep['clock'])} "
            f"({pair(spinning['clock'])}); one full frame's FeedDecoder.decode "
            f"{pair(asleep['decode'])} ({pair(spinning['decode'])})")


# -- the harness ------------------------------------------------------------------------------------
def percentiles(samples_ns: Any) -> dict[str, float]:
    """p50, p90, p99, p99.9 and max in µs (numpy over the samples)."""
    import numpy as np

    values = np.asarray(samples_ns, dtype=np.float64) / 1e3
    if len(values) == 0:
        return {f"p{p:g}": float("nan") for p in PERCENTILES} | {"max": float("nan")}
    out = {f"p{p:g}": float(v) for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))}
    out["max"] = float(values.max())
    return out


def measure(kind: str, rate: int, frames: int, timeout: float = 600) -> dict[str, Any]:
    """One client against its own server for `frames` frames: ``samples`` (ns, warm-up left
    out), ``own`` (MarketFeed clients: listener-to-callback ns, as stats() keeps them), ``errors``."""
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from fastfeed.benchmark.latency import server_main; "
         "server_main(int(sys.argv[1]), int(sys.argv[2]))", str(rate), str(frames)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url.startswith("ws://"):
            raise RuntimeError("the latency server did not start")
        # The result goes through a file: the SDK's threads print their own noise to stdout.
        code = ("import json, sys; from fastfeed.benchmark.latency import client_main; "
                "r = client_main(sys.argv[1], sys.argv[2], int(sys.argv[3])); "
                "open(sys.argv[4], 'w').write(json.dumps(r))")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "result.json")
            out = subprocess.run([sys.executable, "-c", code, kind, url, str(frames), path],
                                 capture_output=True, text=True, timeout=timeout)
            if out.returncode != 0:
                raise RuntimeError(f"{kind} client failed: {out.stderr[-2000:]}")
            with open(path) as f:
                result: dict[str, Any] = json.load(f)
    finally:
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    result["samples"] = result["samples"][WARMUP:]
    return result


def compare(rates: tuple[int, ...] = RATES, seconds: float = 3.0,
            clients: tuple[str, ...] = CLIENTS, rounds: int = 3) -> list[dict[str, Any]]:
    """Rows for every client at every rate. The clients take turns, `rounds` times, for
    `seconds` of frames in all each (and ``MIN_FRAMES`` a round at least), so that a machine's
    load changing during the run weighs on all of them alike. ``vs_sdk_p50`` / ``vs_sdk_p99``:
    the SDK streamer's figure over this client's at the same rate (how many times faster), when
    the SDK ran."""
    rows = []
    for rate in rates:
        frames = max(WARMUP + MIN_FRAMES, int(rate * seconds / rounds))
        pooled: dict[str, dict[str, Any]] = {
            kind: {"samples": [], "own": [], "errors": 0} for kind in clients}
        for _ in range(rounds):
            for kind in clients:
                result = measure(kind, rate, frames)
                pool = pooled[kind]
                pool["samples"] += result["samples"]
                pool["own"] += result.get("own", [])
                pool["errors"] += result["errors"]
        group = []
        for kind, pool in pooled.items():
            row = {"client": kind, "rate": rate, "frames": len(pool["samples"]),
                   "errors": pool["errors"], **percentiles(pool["samples"])}
            if pool["own"]:
                row["listener_to_callback_us"] = percentiles(pool["own"])
            group.append(row)
        sdk = next((r for r in group if r["client"] == "sdk"), None)
        for r in group:
            r["vs_sdk_p50"] = sdk["p50"] / r["p50"] if sdk else None
            r["vs_sdk_p99"] = sdk["p99"] / r["p99"] if sdk else None
        rows.extend(group)
    return rows


def _us(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'client':<16}{'frames/s':>9}{'frames':>8}{'p50':>11}{'p90':>11}{'p99':>11}"
             f"{'p99.9':>11}{'SDK/p50':>9}{'SDK/p99':>9}  listener to callback p50 / p99"]
    for r in rows:
        vs50 = f"{r['vs_sdk_p50']:.1f}x" if r.get("vs_sdk_p50") else "-"
        vs99 = f"{r['vs_sdk_p99']:.1f}x" if r.get("vs_sdk_p99") else "-"
        own = r.get("listener_to_callback_us")
        own_text = f"{own['p50']:.1f} / {own['p99']:.1f}" if own else "-"
        lines.append(f"{r['client']:<16}{r['rate']:>9,}{r['frames']:>8,}"
                     + "".join(f"{_us(r[p]):>11}" for p in ("p50", "p90", "p99", "p99.9"))
                     + f"{vs50:>9}{vs99:>9}  {own_text}")
    lines.append("µs from the server's send time to the callback's start; loopback TCP, one full "
                 f"instrument per frame; server and client in separate processes pinned to CPUs "
                 f"{SERVER_CPU} and {CLIENT_CPU}; SDK/pNN: the SDK streamer's figure over the row's")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_rows(compare()))
