"""Helpers for the shared-memory tests (imported by name: tests/shared has no __init__.py).

Readers run in real processes (multiprocessing's spawn: no inherited threads or mappings) and
take commands over a pipe; the hub is a MarketFeed(share=...) in the test process or the
`fastfeed hub` command in a subprocess, fed by the simulator over 127.0.0.1.
"""
from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
import time
import uuid
from typing import Any, Callable

import numpy as np

from fastfeed import MarketFeed
from feed_helpers import FAST

TOKEN = "test-token-shared-0123456789"
CTX = multiprocessing.get_context("spawn")
LONG = 60.0  # generous: the box is loaded


def share_name() -> str:
    return f"fftest-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def hub_for(sim: Any, name: str, **kwargs: Any) -> MarketFeed:
    kwargs.setdefault("reconnect", FAST)
    kwargs.setdefault("mode", "full")
    return MarketFeed(TOKEN, url=sim.market_url, share=name, **kwargs)


def wait(predicate: Callable[[], Any], timeout: float = LONG, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in time: {what}")
        time.sleep(0.01)


def quiesce(sim: Any, feed: MarketFeed) -> int:
    """Stop the simulator's ticks and wait until the hub has decoded every frame sent; returns
    the hub's ring head then."""
    sim.rate = 0
    def caught_up() -> bool:
        sent = sim.counters.frames_sent
        if feed.decoder.frames != sent:
            return False
        time.sleep(0.05)  # a frame the drive loop was sending as the rate changed
        return feed.decoder.frames == sim.counters.frames_sent
    wait(caught_up, what="the hub decoded every frame sent")
    return feed.store.updates_written


# -- the reader process -------------------------------------------------------------------------
def _reader_main(name: str, conn: Any, attach_timeout: float) -> None:
    import asyncio

    import fastfeed

    try:
        feed = fastfeed.attach(name, timeout=attach_timeout)
    except Exception as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
        return
    ring = feed.reader(from_start=True)
    conn.send(("ok", feed.generation, feed.writer_pid))
    while True:
        command, *args = conn.recv()
        try:
            if command == "exit":
                feed.close()
                conn.send(("ok",))
                return
            if command == "snapshot":
                (head,) = args
                deadline = time.monotonic() + LONG
                while ring.pending + ring.cursor < head and time.monotonic() < deadline:
                    time.sleep(0.005)
                conn.send(("ok", feed.snapshot.tobytes(), feed.instruments, feed.market_status,
                           feed.stats()))
            elif command == "read_all":
                # Read while the hub writes, pausing between reads so that the ring laps this
                # reader, until told the final head; then up to it.
                (pause,) = args
                seqs, fields, head = [], [], None
                deadline = time.monotonic() + LONG
                while (head is None or ring.cursor < head) and time.monotonic() < deadline:
                    records, _ = ring.read()
                    seqs.append(records["seq"].copy())
                    fields.append(np.stack([records["row"].astype(float), records["ltp"]], 1))
                    if head is None and conn.poll():
                        head = conn.recv()
                    time.sleep(pause)
                conn.send(("ok", np.concatenate(seqs), np.concatenate(fields), ring.missed,
                           ring.cursor))
            elif command == "spin":
                # Read as fast as possible until killed.
                conn.send(("ok",))
                spinner = feed.reader()
                while True:
                    spinner.read()
            elif command == "subscribe":
                conn.send(("ok", feed.subscribe(*args)))
            elif command == "unsubscribe":
                conn.send(("ok", feed.unsubscribe(*args)))
            elif command == "wait_for":
                key, timeout = args
                quote = asyncio.run(feed.wait_for(key, timeout=timeout))
                conn.send(("ok", quote.key, quote.updates))
            elif command == "updates":
                # Records from the async iterator, polling or spinning, until `n` arrived.
                n, busy = args

                async def collect() -> np.ndarray:
                    seqs = []
                    async for batch in feed.updates(busy_poll=busy):
                        seqs.append(batch.records["seq"].copy())
                        if sum(map(len, seqs)) >= n:
                            return np.concatenate(seqs)
                    raise AssertionError("updates() ended")
                conn.send(("ok", asyncio.run(asyncio.wait_for(collect(), LONG))))
            elif command == "quote":
                quote = feed.quote(*args)
                conn.send(("ok", None if quote is None else (quote.key, quote.updates)))
            elif command == "write":
                # Try to write the hub's memory: numpy refuses; a raw write faults the process.
                try:
                    feed.snapshot["ltp"][0] = 1.0
                    conn.send(("ok", "numpy allowed a write"))
                except ValueError:
                    conn.send(("ok", "read-only"))
                import ctypes
                address = feed.ring.__array_interface__["data"][0]
                ctypes.memset(address, 0xFF, 64)
                conn.send(("ok", "the raw write went through"))
            else:
                conn.send(("error", "ValueError", f"unknown command {command}"))
        except Exception as exc:
            conn.send(("error", type(exc).__name__, str(exc)))


class Reader:
    """A reader process and its command pipe."""

    def __init__(self, name: str, attach_timeout: float = LONG, wait: bool = True) -> None:
        self.conn, child = CTX.Pipe()
        self.process = CTX.Process(target=_reader_main, args=(name, child, attach_timeout),
                                   daemon=True)
        self.process.start()
        child.close()
        self.attached: tuple[Any, ...] | None = None
        if wait:
            self.attached = self.reply()

    def reply(self, timeout: float = LONG) -> tuple[Any, ...]:
        if not self.conn.poll(timeout):
            raise AssertionError("the reader process did not answer in time")
        return self.conn.recv()

    def ask(self, *command: Any, timeout: float = LONG) -> tuple[Any, ...]:
        self.conn.send(command)
        return self.reply(timeout)

    def ok(self, *command: Any, timeout: float = LONG) -> tuple[Any, ...]:
        self.conn.send(command)
        return self.result(timeout)

    def result(self, timeout: float = LONG) -> tuple[Any, ...]:
        """The answer to a command sent earlier, which must have succeeded."""
        answer = self.reply(timeout)
        assert answer[0] == "ok", answer
        return answer[1:]

    def close(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(("exit",))
                self.conn.poll(10)
            except (BrokenPipeError, OSError):
                pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the hub command ------------------------------------------------------------------------------
class HubProcess:
    """`python -m fastfeed hub` in a subprocess; the metrics port is read from its log."""

    def __init__(self, sim: Any, name: str, keys: list[str], *extra: str) -> None:
        env = dict(os.environ, UPSTOX_ACCESS_TOKEN=TOKEN)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fastfeed", "hub", "--share", name, "--instruments", *keys,
             "--mode", "full", "--url", sim.market_url, *extra],
            env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.log: list[str] = []

    def wait_log(self, pattern: str, timeout: float = LONG) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        assert self.process.stderr is not None
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                raise AssertionError(f"the hub exited before logging {pattern!r}: {self.log}")
            self.log.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"the hub did not log {pattern!r}: {self.log}")

    def stop(self, sig: int | None = None) -> int:
        if self.process.poll() is None:
            if sig is None:
                self.process.terminate()
            else:
                self.process.send_signal(sig)
        try:
            return self.process.wait(LONG)
        finally:
            if self.process.stderr is not None:
                self.log.extend(self.process.stderr.readlines())
                self.process.stderr.close()
