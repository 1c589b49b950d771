"""The `fastfeed` command as a user meets it: help written for users, one-line errors with an exit
status (never a traceback), and `bench` on an install without the SDK."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

TOKEN = "cli-test-token-0123456789"


def fastfeed(*args: str, timeout: float = 60, env: dict[str, str] | None = None,
             code: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "fastfeed", *args] if code is None else [sys.executable, "-c", code, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode not in (0, None), out
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastfeed: "), out.stderr
    return lines[0]


def test_help_is_for_users_and_names_fastfeed() -> None:
    out = fastfeed("--help")
    assert out.returncode == 0 and out.stdout.startswith("usage: fastfeed ")
    for command in ("demo", "watch", "sim", "bench"):
        assert f"    {command} " in out.stdout
    assert "python -m" not in out.stdout.split("\n", 1)[0]


def test_command_help_shows_defaults_and_choices() -> None:
    out = fastfeed("watch", "--help")
    assert out.returncode == 0 and out.stdout.startswith("usage: fastfeed watch")
    assert "{ltpc,full,option_greeks,full_d30}" in out.stdout and "(default: full)" in out.stdout
    assert "--rows N" in out.stdout
    sim = fastfeed("sim", "--help").stdout
    assert "(default: 127.0.0.1)" in sim and "{302,307}" in sim and "(default: 1011)" in sim


def test_the_simulator_on_a_busy_port_is_a_one_line_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_line_error(fastfeed("sim", "--port", str(port)))
    assert f"127.0.0.1:{port}" in line and "already in use" in line


def test_the_simulator_bench_rate_is_checked_in_one_line() -> None:
    line = one_line_error(fastfeed("sim", "--bench-rate", "100"))
    assert "--bench-rate" in line and "--bench" in line
    line = one_line_error(fastfeed("sim", "--bench", "--bench-rate", "0"))
    assert "bench_rate must be positive" in line


def test_watch_full_d30_without_plus_says_upstox_ignores_such_keys() -> None:
    for token in (TOKEN, None):  # the mode is refused whether a token is set or not
        env = {k: v for k, v in os.environ.items() if k != "UPSTOX_ACCESS_TOKEN"}
        if token:
            env["UPSTOX_ACCESS_TOKEN"] = token
        out = fastfeed("watch", "NSE_EQ|INE002A01018", "--mode", "full_d30", env=env)
        line = one_line_error(out)
        assert out.returncode == 2 and "Upstox ignores" in line and "--plus" in line


def test_watch_on_an_unreachable_host_is_bounded_by_duration() -> None:
    with socket.socket() as s:  # a port nothing listens on: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    out = fastfeed("watch", "NSE_EQ|INE002A01018", "--url", f"ws://127.0.0.1:{port}/feed",
                   "--duration", "2", env={**os.environ, "UPSTOX_ACCESS_TOKEN": TOKEN})
    line = one_line_error(out)
    assert "could not connect" in line and time.monotonic() - started < 30


def test_ctrl_c_while_connecting_is_a_one_line_message() -> None:
    with socket.socket() as s:  # accepts the TCP connection, never answers the upgrade
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "fastfeed", "watch", "NSE_EQ|X",
                                 "--url", f"ws://127.0.0.1:{port}/feed"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "UPSTOX_ACCESS_TOKEN": TOKEN},
                                # A shell starts background jobs with SIGINT ignored, and a child
                                # keeps that: give it Ctrl-C's default, as a terminal would.
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        conn, _ = s.accept()  # the client is connecting now
        with conn:
            proc.send_signal(signal.SIGINT)  # as Ctrl-C
            _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines() == ["fastfeed: interrupted"]


def test_bench_quick_without_the_sdk_runs_and_names_the_extra() -> None:
    # As on a plain `pip install .`: the official SDK cannot be imported.
    code = ("import sys; sys.modules['upstox_client'] = None; sys.argv[0] = 'fastfeed'; "
            "from fastfeed.__main__ import main; sys.exit(main(sys.argv[1:]))")
    out = fastfeed("bench", "--quick", code=code, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert "upb FromString" in out.stdout and "official SDK" not in out.stdout.split("\n")[1]
    assert "pip install 'fastfeed[bench]'" in out.stdout
    assert "portfolio" in out.stdout.lower()
    assert max(len(line) for line in out.stdout.splitlines()) <= 100  # nothing wraps when piped
