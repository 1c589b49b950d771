"""Hub -> NATS -> NatsFeed on this machine: updates per second bridged and received, and the
delay from the hub's receive to the quote at the remote reader (p50, p99), at a paced rate.

Four processes: a benchmark-mode simulator pushing its pre-encoded frame pool at a fixed rate
(``--bench-rate``: it takes a few percent of a core, not the core a flooding source takes), the hub
(MarketFeed + Bridge, this process), nats-server and a NatsFeed reader (a child process). Every
update goes out live on core NATS; the stream stores the newest update of each changed subject
every ``state_interval`` ("stored"). The bridge drops what NATS cannot take in time and counts it.

Placement, on a machine with two CPUs or more: the simulator and nats-server share CPU 1, the hub
and the reader CPU 0, which splits the load about evenly; nats-server runs one Go thread
(``GOMAXPROCS=1``), as a server on a small shared machine should (see fastfeed.nats.server).

Each rate in ``rates`` is one run on a fresh server: offered (updates the simulator sent per
second), bridged (live updates handed to NATS), dropped (replaced before they were sent), received
(updates the reader applied per second), the hub-receive-to-remote-quote delay (p50, p99 of the
run's last 65,536 messages) and each process's CPU (% of one core over the run). The result is the
highest rate carried: at most 0.1 % of the updates dropped (counted, latest-wins), and the reader
never lost its connection or a stream message.

Beside them, in the same run, two baselines of the server itself with nats-py and no fastfeed:
ready-made messages of the same size and subjects published in large batches into a stream of
the same configuration (what JetStream can store per second here) and to subjects no stream
holds, read by one raw subscriber (core NATS), with the server's CPU per message.

    python -m fastfeed.benchmark.nats                      # prints the table
    python -m fastfeed.benchmark.nats 100000 200000 300000  # these offered rates (updates/s)
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Iterator

from fastfeed.benchmark.e2e import TOKEN, _pin

PREFIX = "bench"
RATES = (100_000, 200_000, 220_000, 250_000)
DROPS_CARRIED = 0.001   # a rate is carried with at most this share of its updates dropped


def _pinning() -> bool:
    return (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")


@contextlib.contextmanager
def _placed() -> Iterator[Any]:
    """A nats-server on CPU 1 with one Go thread, and this process on CPU 0, for the block."""
    from fastfeed.nats.server import NatsServer

    pin = _pinning()
    before = os.sched_getaffinity(0) if pin else None
    with NatsServer(gomaxprocs=1, cpus={1} if pin else None) as server:
        if pin:
            os.sched_setaffinity(0, {0})
        try:
            yield server
        finally:
            if before is not None:
                os.sched_setaffinity(0, before)


# -- the reader (a child process) -------------------------------------------------------------------
def _reader(url: str, idle: float) -> dict[str, Any]:
    import uvloop

    from fastfeed.nats import NatsFeed

    async def main() -> dict[str, Any]:
        async with NatsFeed(url, prefix=PREFIX, max_instruments=8192) as feed:
            print("ready", flush=True)
            first = last = 0.0
            seen = 0
            while True:
                await asyncio.sleep(0.05)
                now = time.perf_counter()
                if feed.decoder.updates != seen:
                    if not seen:
                        first = now
                    seen, last = feed.decoder.updates, now
                elif seen and now - last > idle:
                    break
            stats = feed.stats()
            return {"received": seen, "seconds": max(last - first, 1e-9),
                    "latency_us": feed.latency(),
                    **{k: stats[k] for k in ("messages", "live_messages", "stale", "resyncs",
                                             "held_over", "disconnects")}}

    return uvloop.run(main())


def _start_reader(url: str, idle: float) -> subprocess.Popen[str]:
    code = ("import json,sys; from fastfeed.benchmark.nats import _reader; "
            "print(json.dumps(_reader(sys.argv[1], float(sys.argv[2]))))")
    proc = subprocess.Popen([*_pin(0), sys.executable, "-c", code, url, str(idle)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the NatsFeed reader did not start")
    return proc


def _reader_result(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# -- the hub (this process) -------------------------------------------------------------------------
def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux), 0.0 where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _hub(sim_url: str, nats_url: str, keys: list[str], mode: str, reader_idle: float,
               procs: dict[str, int], reader: list[Any], bridge_options: dict[str, Any]) -> dict[str, Any]:
    from fastfeed import MarketFeed, ReconnectPolicy
    from fastfeed.nats import Bridge

    feed = MarketFeed(TOKEN, url=sim_url, instruments=keys, mode=mode, ping_interval=None,
                      reconnect=ReconnectPolicy.disabled(), max_instruments=8192)
    bridge = Bridge(feed, nats_url, prefix=PREFIX, **{"storage": "memory", "max_bytes": 256 << 20,
                                                       **bridge_options})
    await bridge.start()
    await bridge.wait_connected(20)
    reader.append(_start_reader(nats_url, reader_idle))
    procs = {**procs, "hub": os.getpid(), "reader": reader[0].pid}
    cpu0 = {name: _cpu_seconds(pid) for name, pid in procs.items()}
    t0 = time.perf_counter()
    # The rate counts from the first live frame: the snapshot before it, and the simulator
    # building its frame pool, are not the paced run.
    first: list[tuple[float, int]] = []
    frames: list[int] = []

    def started(records: Any) -> None:
        frames.append(len(records))
        if len(frames) == 2:
            first.append((time.perf_counter(), feed.decoder.updates - len(records)))
            feed.off_update(started)

    feed.on_update(started)
    await feed.connect()
    try:
        await feed.wait_closed()
    except Exception:  # the simulator's close after N frames ends the run
        pass
    t_first, before = first[0] if first else (t0, 0)
    seconds = time.perf_counter() - t_first
    await asyncio.wait_for(bridge.flush(), 60)
    wall = time.perf_counter() - t0
    cpu = {name: 100 * (_cpu_seconds(pid) - cpu0[name]) / wall for name, pid in procs.items()}
    stats = bridge.stats()
    await bridge.close()
    await feed.close()
    return {"hub_updates": feed.decoder.updates, "paced_updates": feed.decoder.updates - before,
            "bridged": stats["published"],
            "dropped": stats["dropped"], "stored": stats["stored"],
            "conflated": stats["conflated"], "hub_seconds": seconds, "cpu_percent": cpu,
            "bytes_per_message": stats["bytes_published"] / max(1, stats["published"])}


def _start_sim(rate: float, seconds: float, instruments: int, per_frame: int) -> tuple[subprocess.Popen[str], str]:
    """A paced benchmark-mode simulator: `rate` updates per second for `seconds`."""
    fps = rate / per_frame
    cmd = [*_pin(1), sys.executable, "-m", "fastfeed", "sim", "--bench", "--bench-rate", str(fps),
           "--bench-frames", str(int(fps * seconds) + 2), "--token", TOKEN,
           "--instruments", str(instruments), "--instruments-per-frame", str(per_frame),
           "--ping-interval", "0", "--rate", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    base = proc.stdout.readline().strip()
    if not base.startswith("ws://"):
        proc.kill()
        raise RuntimeError("the simulator did not start")
    return proc, base + "/v3/feed/market-data-feed"


def paced(rate: float, *, seconds: float = 5.0, instruments: int = 1000, per_frame: int = 50,
          mode: str = "full", bridge_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run at `rate` offered updates per second, on a fresh nats-server; a dict of figures."""
    import uvloop

    from fastfeed.sim.prices import universe

    keys = universe(instruments, 0)
    with _placed() as nats_server:
        assert nats_server.process is not None
        sim, url = _start_sim(rate, seconds, instruments, per_frame)
        reader: list[Any] = []
        try:
            hub = uvloop.run(_hub(url, nats_server.url, keys, mode, 1.5,
                                  {"simulator": sim.pid, "nats-server": nats_server.process.pid},
                                  reader, bridge_options or {}))
            got = _reader_result(reader[0], 120)
        finally:
            sim.terminate()
            sim.wait(10)
            for r in reader:
                r.kill()
    return {"offered": rate, **hub,
            "hub_per_s": hub["paced_updates"] / hub["hub_seconds"],
            "bridged_per_s": (hub["bridged"] - (hub["hub_updates"] - hub["paced_updates"]))
            / hub["hub_seconds"],
            "received": got["received"], "received_per_s": got["received"] / got["seconds"],
            "latency_us": got["latency_us"],
            "reader": {k: got[k] for k in ("messages", "live_messages", "stale", "resyncs",
                                           "held_over", "disconnects")}}


def _count_delivered(host: str, port: int, subject: str, got: list[int]) -> socket.socket:
    """A raw subscriber to `subject` in a thread: bytes received add up in got[0]."""
    sock = socket.create_connection((host, port))
    sock.recv(4096)  # INFO
    sock.sendall(b'CONNECT {"verbose":false,"headers":true}\r\nSUB %s 1\r\nPING\r\n' % subject.encode())

    def read() -> None:
        buf = bytearray(1 << 20)
        try:
            while n := sock.recv_into(buf):
                got[0] += n
        except OSError:  # closed at the end
            pass

    threading.Thread(target=read, daemon=True).start()
    return sock


async def _baseline(url: str, size: int, subjects: int, stored: bool, seconds: float = 3.0,
                    server_pid: int = 0) -> dict[str, float]:
    """Messages per second nats-server takes from one connection: batches of `subjects`
    ready-made HPUBs of `size` bytes, into a last-per-subject stream (`stored`) or, with one raw
    subscriber reading them all, none; and the server's CPU per message."""
    import nats
    from nats.js.api import StorageType, StreamConfig

    nc = await nats.connect(url, pending_size=256 << 20)
    host, port = url.rsplit("/", 1)[-1].split(":")
    got = [0]
    sub = None if stored else _count_delivered(host, int(port), "baseline_core.>", got)
    await asyncio.sleep(0.2)   # the subscription is in before the first message
    cpu0 = _cpu_seconds(server_pid)
    try:
        js = nc.jetstream()
        prefix = "baseline_js" if stored else "baseline_core"
        if stored:
            await js.add_stream(StreamConfig(name="BASELINE", subjects=[f"{prefix}.>"],
                                             max_msgs_per_subject=1, storage=StorageType.MEMORY,
                                             max_bytes=256 << 20))
        hdr = b"NATS/1.0\r\nFastfeed-Recv-Ns: 1234567890123456789\r\n\r\n"
        body = b"x" * size
        batch = b"".join(b"HPUB %s.s%d.ld %d %d\r\n%s%s\r\n" % (
            prefix.encode(), i, len(hdr), len(hdr) + size, hdr, body) for i in range(subjects))
        sent = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            await nc._send_command(batch)
            await nc._flush_pending()
            sent += subjects
            while nc.pending_data_size > 4 << 20:
                await asyncio.sleep(0.001)
        await nc.flush(timeout=120)
        if not stored:
            return {"per_s": sent / (time.perf_counter() - t0),
                    "server_us": 1e6 * (_cpu_seconds(server_pid) - cpu0) / sent}
        # What the stream stored, once it stops growing (a server this loaded may drop some).
        last, done = -1, time.perf_counter()
        while True:
            seq = (await js.stream_info("BASELINE")).state.last_seq
            if seq != last:
                last, done = seq, time.perf_counter()
            elif time.perf_counter() - done > 0.5:
                return {"per_s": last / (done - t0),
                        "server_us": 1e6 * (_cpu_seconds(server_pid) - cpu0) / max(1, last)}
            await asyncio.sleep(0.02)
    finally:
        await nc.close()
        if sub is not None:
            sub.close()


def run(*, rates: tuple[float, ...] = RATES, seconds: float = 5.0, instruments: int = 1000,
        per_frame: int = 50, mode: str = "full") -> dict[str, Any]:
    """A paced run per rate and the server's own baselines; a dict of figures."""
    import uvloop

    runs = [paced(rate, seconds=seconds, instruments=instruments, per_frame=per_frame, mode=mode)
            for rate in rates]
    # Received can be below bridged with nothing lost: a live update whose subject's newer update
    # came first from the stream is skipped.
    carried = [r for r in runs if r["dropped"] <= DROPS_CARRIED * r["hub_updates"]
               and not r["reader"]["resyncs"] and not r["reader"]["disconnects"]]
    out: dict[str, Any] = {"instruments": instruments, "per_frame": per_frame, "mode": mode,
                           "runs": runs,
                           "carried_per_s": max((r["hub_per_s"] for r in carried), default=0.0)}
    size = int(runs[0]["bytes_per_message"])
    with _placed() as nats_server:
        assert nats_server.process is not None
        pid = nats_server.process.pid
        out["bytes_per_message"] = size
        out["jetstream_baseline"] = uvloop.run(_baseline(nats_server.url, size, instruments, True,
                                                         server_pid=pid))
        out["core_baseline"] = uvloop.run(_baseline(nats_server.url, size, instruments, False,
                                                    server_pid=pid))
    return out


def format_result(r: dict[str, Any]) -> str:
    lines = [f"hub -> NATS -> NatsFeed, {r['instruments']} instruments, {r['per_frame']} per frame, "
             f"mode {r['mode']}, paced simulator",
             f"  {'offered/s':>10} {'hub/s':>10} {'bridged/s':>10} {'dropped':>9} {'received/s':>11} "
             f"{'p50 us':>8} {'p99 us':>8}  CPU % sim/hub/nats/reader"]
    for x in r["runs"]:
        cpu = x["cpu_percent"]
        lines.append(
            f"  {x['offered']:>10,.0f} {x['hub_per_s']:>10,.0f} {x['bridged_per_s']:>10,.0f} "
            f"{100 * x['dropped'] / max(1, x['hub_updates']):>8.2f}% {x['received_per_s']:>11,.0f} {x['latency_us']['p50']:>8,.0f} "
            f"{x['latency_us']['p99']:>8,.0f}  {cpu['simulator']:.0f}/{cpu['hub']:.0f}/"
            f"{cpu['nats-server']:.0f}/{cpu['reader']:.0f}")
    lines += [
        f"  carried (<= {100 * DROPS_CARRIED:g} % dropped, reader never resynced): "
        f"{r['carried_per_s']:,.0f} updates/s",
        f"  baselines, nats-py batches of {r['bytes_per_message']:,}-byte messages, no fastfeed: "
        f"JetStream stores {r['jetstream_baseline']['per_s']:,.0f}/s "
        f"({r['jetstream_baseline']['server_us']:.1f} us of server CPU each); core NATS to one "
        f"subscriber {r['core_baseline']['per_s']:,.0f}/s "
        f"({r['core_baseline']['server_us']:.1f} us each)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_result(run(rates=tuple(float(a) for a in sys.argv[1:]) or RATES)))
