"""End to end over loopback: a benchmark-mode simulator pushes pre-encoded frames as fast as the
socket drains; each client receives and decodes until the server closes after N frames.

Clients, each in its own process (pinned to CPU 0 when `taskset` is there; the server gets CPU 1):
- fastfeed: MarketFeed (picows + the Cython listener and decoder) on uvloop;
- sdk: the official MarketDataStreamerV3, only its URL pointed at the simulator, counting the
  instruments in each ``message`` event;
- websockets+upb: ``websockets`` on uvloop, ``FeedResponse.FromString`` per frame.

Rates are instrument updates per second from the first to the last frame, and CPU is the client
process's CPU time per update. Every figure comes from one run, side by side. ``tls=True``
serves wss:// with the simulator's throwaway CA, which the fastfeed and websockets clients
trust (the SDK verifies nothing, as it never does).

    python -m fastfeed.benchmark.e2e          # prints the table
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

TOKEN = "e2e-bench-token"
CA_FILE_ENV = "FASTFEED_E2E_CA_FILE"  # set for a client process when the server is wss://
CLIENTS = ("fastfeed", "websockets+upb", "sdk")
# Frames per client: each client gets about the same wall time, not the same frame count.
DEFAULT_FRAMES = {"fastfeed": 3_000_000, "fastfeed+record": 3_000_000,
                  "fastfeed+record-thread": 3_000_000, "fastfeed+record-shared": 3_000_000,
                  "websockets+upb": 300_000, "sdk": 40_000}


# -- clients (run in a child process) ---------------------------------------------------------------
def _ssl_context() -> Any:
    import ssl

    cafile = os.environ.get(CA_FILE_ENV)
    return ssl.create_default_context(cafile=cafile) if cafile else None

def _client_fastfeed(url: str, keys: list[str], mode: str, record: str | None = None,
                     writer_cpus: set[int] | None = None, writer: str = "thread") -> dict[str, Any]:
    import uvloop

    from fastfeed import MarketFeed, ReconnectPolicy

    async def main() -> dict[str, Any]:
        feed = MarketFeed(TOKEN, url=url, instruments=keys, mode=mode, ping_interval=None,
                          reconnect=ReconnectPolicy.disabled(), max_instruments=max(4096, len(keys)),
                          ssl=_ssl_context())
        if record is not None:
            # A writer process starts in about half a second: the flood waits for it.
            feed.record(record, writer_cpus=writer_cpus, writer=writer).wait_ready()
        first: list[float] = []
        feed.on("market_status", lambda status: first.extend(
            (time.process_time(), time.perf_counter(), time.thread_time())))
        await feed.connect()
        try:
            await feed.wait_closed()
        except Exception:  # the server's close after N frames ends the run
            pass
        wall_end, cpu_end, loop_end = time.perf_counter(), time.process_time(), time.thread_time()
        d = feed.decoder
        # loop_cpu_s: the receiving thread's own CPU (cpu_s also counts a recording's writer).
        out = {"frames": d.frames, "updates": d.updates, "bytes": d.bytes, "errors": d.errors,
               "seconds": wall_end - first[1], "cpu_s": cpu_end - first[0],
               "loop_cpu_s": loop_end - first[2]}
        rec = feed.stop_recording()
        if rec is not None:  # the file is finished after the clock stopped: it is not timed
            out.update(recorded=rec["records"], dropped=rec["dropped"], file_bytes=rec["file_bytes"])
        return out

    return uvloop.run(main())


def _client_websockets(url: str, keys: list[str], mode: str) -> dict[str, Any]:
    import uvloop
    import websockets

    from fastfeed.proto import fastfeed_market_v3_pb2 as pb
    from fastfeed.transport.requests import request

    async def main() -> dict[str, Any]:
        frames = updates = nbytes = 0
        parse = pb.FeedResponse.FromString
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"},
                                      compression=None, max_size=1 << 24, ping_interval=None,
                                      max_queue=64, ssl=_ssl_context()) as ws:
            await ws.send(request("sub", keys, mode))
            raw = await ws.recv()
            cpu0, t0 = time.process_time(), time.perf_counter()
            try:
                while True:
                    frames += 1
                    nbytes += len(raw)
                    updates += len(parse(raw).feeds)
                    raw = await ws.recv()
            except websockets.exceptions.ConnectionClosed:
                pass
        return {"frames": frames, "updates": updates, "bytes": nbytes, "errors": 0,
                "seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0}

    return uvloop.run(main())


def _client_sdk(url: str, keys: list[str], mode: str) -> dict[str, Any]:
    import threading
    from types import SimpleNamespace

    import upstox_client
    import websocket
    from upstox_client.feeder import MarketDataStreamerV3, market_data_feeder_v3

    upstox = "wss://api.upstox.com"
    base = url.split("/v3/", 1)[0]

    def app(u: str, *args: Any, **kwargs: Any) -> Any:  # only the URL changes
        return websocket.WebSocketApp(base + u[len(upstox):], *args, **kwargs)

    market_data_feeder_v3.websocket = SimpleNamespace(WebSocketApp=app, ABNF=websocket.ABNF)
    configuration = upstox_client.Configuration()
    configuration.access_token = TOKEN
    streamer = MarketDataStreamerV3(upstox_client.ApiClient(configuration), keys, mode)
    streamer.auto_reconnect(False)
    counts = {"frames": 0, "updates": 0}
    first: list[float] = []
    done = threading.Event()

    def on_message(message: dict[str, Any]) -> None:
        if not first:
            first.extend((time.process_time(), time.perf_counter()))
        counts["frames"] += 1
        counts["updates"] += len(message.get("feeds", ()))

    streamer.on("message", on_message)
    streamer.on("close", lambda *a: done.set())
    streamer.on("error", lambda *a: done.set())
    streamer.connect()
    done.wait(600)
    end_wall, end_cpu = time.perf_counter(), time.process_time()
    streamer.disconnect()
    return {**counts, "bytes": 0, "errors": 0, "seconds": end_wall - first[1],
            "cpu_s": end_cpu - first[0]}


def _other_cpus() -> set[int] | None:
    """The CPUs this process is not pinned to (on a 2-CPU machine, the server's), or None."""
    own = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    return set(range(os.cpu_count() or 1)) - own or None


def _recording(url: str, keys: list[str], mode: str, **options: Any) -> dict[str, Any]:
    """The fastfeed client recording every frame into a capture file in a temporary directory
    (see fastfeed.capture), with the recorder's `options`."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return _client_fastfeed(url, keys, mode, record=os.path.join(tmp, "e2e.arrows"), **options)


def _client_fastfeed_record(url: str, keys: list[str], mode: str) -> dict[str, Any]:
    """fastfeed recording every frame as a full-rate deployment would: a writer process (a GIL of
    its own) off the receiving core, on the CPUs the client process is not pinned to (on a 2-CPU
    machine that is the server's CPU, where it competes with the server)."""
    return _recording(url, keys, mode, writer_cpus=_other_cpus(), writer="process")


def _client_fastfeed_record_thread(url: str, keys: list[str], mode: str) -> dict[str, Any]:
    """As fastfeed+record, with the default writer thread on the other CPUs: it takes the GIL
    from the receiving thread at every pyarrow call."""
    return _recording(url, keys, mode, writer_cpus=_other_cpus())


def _client_fastfeed_record_shared(url: str, keys: list[str], mode: str) -> dict[str, Any]:
    """As fastfeed+record, but the writer thread shares the receiving core (the process's
    affinity): compression then takes its time from the feed."""
    return _recording(url, keys, mode)


_CLIENT_FUNCS = {"fastfeed": _client_fastfeed, "fastfeed+record": _client_fastfeed_record,
                 "fastfeed+record-thread": _client_fastfeed_record_thread,
                 "fastfeed+record-shared": _client_fastfeed_record_shared,
                 "websockets+upb": _client_websockets, "sdk": _client_sdk}


# -- the harness ------------------------------------------------------------------------------------
def _pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def _start_server(frames: int, instruments: int, per_frame: int, pin: bool,
                  ca_file: str | None = None) -> tuple[subprocess.Popen[str], str]:
    cmd = [*(_pin(1) if pin else []), sys.executable, "-m", "fastfeed", "sim", "--bench",
           "--bench-frames", str(frames), "--token", TOKEN, "--instruments", str(instruments),
           "--instruments-per-frame", str(per_frame), "--ping-interval", "0", "--rate", "1"]
    if ca_file:
        cmd += ["--tls", "--ca-file", ca_file]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    base = proc.stdout.readline().strip()
    if not base.startswith(("ws://", "wss://")):
        proc.kill()
        raise RuntimeError("the simulator did not start")
    return proc, base


def run_client(kind: str, frames: int, *, mode: str = "full", instruments: int = 100,
               per_frame: int = 1, pin: bool = True, tls: bool = False,
               timeout: float = 600) -> dict[str, Any]:
    """One client against its own benchmark-mode server; the result row."""
    with tempfile.TemporaryDirectory() as tmp:
        ca_file = os.path.join(tmp, "ca.pem") if tls else None
        return _run_client(kind, frames, mode, instruments, per_frame, pin, ca_file, timeout)


def _run_client(kind: str, frames: int, mode: str, instruments: int, per_frame: int, pin: bool,
                ca_file: str | None, timeout: float) -> dict[str, Any]:
    from fastfeed.sim.prices import universe

    server, base = _start_server(frames, instruments, per_frame, pin, ca_file)
    env = {**os.environ, CA_FILE_ENV: ca_file} if ca_file else None
    try:
        url = base + "/v3/feed/market-data-feed"
        keys = universe(instruments, 0)
        code = ("import json,sys; from fastfeed.benchmark.e2e import _CLIENT_FUNCS as F; "
                "print(json.dumps(F[sys.argv[1]](sys.argv[2], json.loads(sys.argv[3]), sys.argv[4])))")
        out = subprocess.run([*(_pin(0) if pin else []), sys.executable, "-c", code, kind, url,
                              json.dumps(keys), mode], capture_output=True, text=True, timeout=timeout,
                             env=env)
        if out.returncode != 0:
            raise RuntimeError(f"{kind} client failed: {out.stderr[-2000:]}")
        # The SDK prints its own noise at exit; the result is the last JSON line.
        result = json.loads(next(line for line in reversed(out.stdout.splitlines())
                                 if line.startswith("{")))
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    seconds = max(result["seconds"], 1e-9)
    updates = max(result["updates"], 1)
    return {"client": kind, "mode": mode, "instruments_per_frame": per_frame, "tls": bool(ca_file),
            **result,
            "updates_per_s": result["updates"] / seconds,
            "cpu_ns_per_update": result["cpu_s"] / updates * 1e9}


def compare(*, mode: str = "full", per_frame: int = 1, instruments: int = 100,
            frames: dict[str, int] | None = None, clients: tuple[str, ...] = CLIENTS,
            pin: bool = True, tls: bool = False) -> list[dict[str, Any]]:
    """Rows for every client, with ``vs_sdk`` (updates per second over the SDK's) when the SDK ran."""
    counts = {**DEFAULT_FRAMES, **(frames or {})}
    rows = [run_client(kind, counts[kind], mode=mode, instruments=instruments, per_frame=per_frame,
                       pin=pin, tls=tls) for kind in clients]
    sdk = next((r for r in rows if r["client"] == "sdk"), None)
    for r in rows:
        r["vs_sdk"] = r["updates_per_s"] / sdk["updates_per_s"] if sdk else None
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'client':<16}{'updates':>12}{'seconds':>9}{'updates/s':>14}{'CPU ns/update':>15}"
             f"{'vs SDK':>9}"]
    for r in rows:
        vs = f"{r['vs_sdk']:.0f}x" if r.get("vs_sdk") else "-"
        lines.append(f"{r['client']:<16}{r['updates']:>12,}{r['seconds']:>9.2f}"
                     f"{r['updates_per_s']:>14,.0f}{r['cpu_ns_per_update']:>15,.0f}{vs:>9}")
    first = rows[0] if rows else {}
    lines.append(f"loopback {'TLS' if first.get('tls') else 'TCP'}, mode {first.get('mode')}, {first.get('instruments_per_frame')} "
                 "instrument(s) per frame, server and client in separate processes"
                 + (" pinned to CPUs 1 and 0" if _pin(0) else ""))
    return "\n".join(lines)


def _client_compat(url: str, keys: list[str], mode: str, *_: Any) -> dict[str, Any]:
    """The SDK client's own code above with one import changed: fastfeed.compat's streamer
    (fastfeed.benchmark.compat)."""
    import upstox_client.feeder

    import fastfeed.compat

    fastfeed.compat.MARKET_DATA_URL = url
    upstox_client.feeder.MarketDataStreamerV3 = fastfeed.compat.MarketDataStreamerV3
    return _client_sdk(url, keys, mode)


_CLIENT_FUNCS["compat"] = _client_compat
DEFAULT_FRAMES["compat"] = 400_000


if __name__ == "__main__":
    print(format_rows(compare()))
