"""Hub -> NATS -> NatsFeed on this machine: updates per second bridged and received, and the
delay from the hub's receive to the quote at the remote reader (p50, p99).

Three processes beside nats-server: a benchmark-mode simulator pushing pre-encoded frames as fast
as the hub takes them, the hub (MarketFeed + Bridge, this process) and a NatsFeed reader (a child
process). The bridge drops what NATS cannot take in time and counts it; "bridged" is what reached
the NATS connection per second, "received" what the reader applied per second. The delay is
measured in a second, paced run (``paced_rate`` updates per second), where it is not queueing.

Beside them, in the same run, two baselines of the server itself with nats-py and no fastfeed:
ready-made messages of the same size and subjects published in large batches into a stream of
the same configuration (what JetStream can store per second here) and to subjects no stream
holds (core NATS). The bridge's rate is bounded by the first.

    python -m fastfeed.benchmark.nats            # prints the table
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

from fastfeed.benchmark.e2e import TOKEN, _pin, _start_server

PREFIX = "bench"


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
            return {"received": seen, "seconds": max(last - first, 1e-9),
                    "latency_us": feed.latency(), "messages": feed.stats()["messages"]}

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
async def _hub(sim_url: str, nats_url: str, keys: list[str], mode: str, reader_idle: float,
               reader: list[Any], duration: float | None = None) -> dict[str, Any]:
    from fastfeed import MarketFeed, ReconnectPolicy
    from fastfeed.nats import Bridge

    feed = MarketFeed(TOKEN, url=sim_url, instruments=keys, mode=mode, ping_interval=None,
                      reconnect=ReconnectPolicy.disabled(), max_instruments=8192)
    bridge = Bridge(feed, nats_url, prefix=PREFIX, storage="memory", max_bytes=256 << 20)
    await bridge.start()
    await bridge.wait_connected(20)
    reader.append(_start_reader(nats_url, reader_idle))
    t0 = time.perf_counter()
    await feed.connect()
    try:
        if duration is None:
            await feed.wait_closed()
        else:
            await asyncio.sleep(duration)
    except Exception:  # the simulator's close after N frames ends the run
        pass
    await asyncio.wait_for(bridge.flush(), 60)
    seconds = time.perf_counter() - t0
    stats = bridge.stats()
    await bridge.close()
    await feed.close()
    return {"hub_updates": feed.decoder.updates, "bridged": stats["published"],
            "dropped": stats["dropped"], "hub_seconds": seconds,
            "bytes_per_message": stats["bytes_published"] / max(1, stats["published"])}


async def _baseline(url: str, size: int, subjects: int, stored: bool, seconds: float = 3.0) -> float:
    """Messages per second nats-server takes from one connection: batches of `subjects`
    ready-made HPUBs of `size` bytes, into a last-per-subject stream (`stored`) or none."""
    import nats
    from nats.js.api import StorageType, StreamConfig

    nc = await nats.connect(url, pending_size=256 << 20)
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
            return sent / (time.perf_counter() - t0)
        # What the stream stored, once it stops growing (a server this loaded may drop some).
        last, done = -1, time.perf_counter()
        while True:
            seq = (await js.stream_info("BASELINE")).state.last_seq
            if seq != last:
                last, done = seq, time.perf_counter()
            elif time.perf_counter() - done > 0.5:
                return last / (done - t0)
            await asyncio.sleep(0.02)
    finally:
        await nc.close()


def run(*, frames: int = 20_000, instruments: int = 1000, per_frame: int = 50, mode: str = "full",
        paced_rate: float = 20_000, paced_seconds: float = 5.0) -> dict[str, Any]:
    """One saturated run (throughput) and one paced run (delay); a dict of figures."""
    import uvloop

    from fastfeed.nats.server import NatsServer
    from fastfeed.sim import SimulatorThread
    from fastfeed.sim.prices import universe

    keys = universe(instruments, 0)
    out: dict[str, Any] = {"instruments": instruments, "per_frame": per_frame, "mode": mode}
    with NatsServer() as nats_server:
        sim, base = _start_server(frames, instruments, per_frame, pin=True)
        reader: list[Any] = []
        try:
            hub = uvloop.run(_hub(base + "/v3/feed/market-data-feed", nats_server.url, keys, mode,
                                  3.0, reader))
            got = _reader_result(reader[0], 120)
        finally:
            sim.terminate()
            sim.wait(10)
            for r in reader:
                r.kill()
        out.update(hub)
        out["bridged_per_s"] = hub["bridged"] / hub["hub_seconds"]
        out["received"] = got["received"]
        out["received_per_s"] = got["received"] / got["seconds"]
        out["saturated_latency_us"] = got["latency_us"]
    with NatsServer() as nats_server:
        rate = max(1.0, paced_rate / per_frame)
        with SimulatorThread(instruments=instruments, rate=rate, instruments_per_frame=per_frame,
                             tokens=[TOKEN], ping_interval=None) as psim:
            reader = []
            try:
                paced = uvloop.run(_hub(psim.market_url, nats_server.url, keys, mode, 1.0, reader,
                                        duration=paced_seconds))
                got = _reader_result(reader[0], 60)
            finally:
                for r in reader:
                    r.kill()
        out["paced_updates_per_s"] = paced["hub_updates"] / paced["hub_seconds"]
        out["paced_dropped"] = paced["dropped"]
        out["paced_latency_us"] = got["latency_us"]
    size = int(hub["bytes_per_message"])
    with NatsServer() as nats_server:
        out["jetstream_baseline_per_s"] = uvloop.run(_baseline(nats_server.url, size, instruments, True))
        out["core_baseline_per_s"] = uvloop.run(_baseline(nats_server.url, size, instruments, False))
    return out


def format_result(r: dict[str, Any]) -> str:
    sat, paced = r["saturated_latency_us"], r["paced_latency_us"]
    return "\n".join([
        f"hub -> NATS -> NatsFeed, {r['instruments']} instruments, {r['per_frame']} per frame, "
        f"mode {r['mode']}",
        f"  hub decoded      {r['hub_updates']:>12,} updates",
        f"  bridged          {r['bridged']:>12,} ({r['bridged_per_s']:,.0f}/s), "
        f"dropped {r['dropped']:,}",
        f"  received remote  {r['received']:>12,} ({r['received_per_s']:,.0f}/s); "
        f"hub->quote p50 {sat['p50']:,.0f} us, p99 {sat['p99']:,.0f} us (saturated)",
        f"  paced {r['paced_updates_per_s']:,.0f} updates/s: hub->quote p50 {paced['p50']:,.0f} us, "
        f"p99 {paced['p99']:,.0f} us, dropped {r['paced_dropped']:,}",
        f"  baselines, nats-py batches of {r['bytes_per_message']:,.0f}-byte messages, no fastfeed: "
        f"JetStream stores {r['jetstream_baseline_per_s']:,.0f}/s, core NATS takes "
        f"{r['core_baseline_per_s']:,.0f}/s; bridged/JetStream = "
        f"{r['bridged_per_s'] / r['jetstream_baseline_per_s']:.2f}",
    ])


if __name__ == "__main__":
    print(format_result(run()))
