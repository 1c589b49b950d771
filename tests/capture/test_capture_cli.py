"""`fastfeed record`, `fastfeed replay` and `fastfeed capture info`, as processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fastfeed.capture as capture

from capture_helpers import KEYS, TOKEN, wait


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastfeed", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _env() -> dict[str, str]:
    return {**os.environ, "UPSTOX_ACCESS_TOKEN": TOKEN}


def test_record_then_replay_then_info(sim: Any, tmp_path: Path) -> None:
    path = tmp_path / "cli.arrows"
    out = _cli("record", str(path), "--instruments", *KEYS[:3], "--mode", "full", "--duration", "1.5",
               "--url", sim.market_url, env=_env())
    assert out.returncode == 0, out.stderr
    assert "frames" in out.stdout and "wrote" in out.stdout and TOKEN not in out.stdout + out.stderr
    info = capture.info(path)
    assert info["complete"] and info["counts"]["frame"] > 100
    assert json.loads(info["metadata"]["subscriptions"]) == {k: "full" for k in KEYS[:3]}
    assert TOKEN.encode() not in path.read_bytes()

    decoder = capture.replay(path)
    out = _cli("replay", str(path))
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines()}
    assert lines["frames"].split()[1] == f"{decoder.frames:,}"
    assert lines["updates"].split()[1] == f"{decoder.updates:,}"
    assert lines["instruments"].split()[1] == "3"
    assert "updates/s" in lines["rate"]

    out = _cli("capture", "info", str(path))
    assert out.returncode == 0, out.stderr
    assert sim.market_url in out.stdout and f"{info['counts']['frame']:,} frames" in out.stdout
    assert "complete          yes" in out.stdout
    out = _cli("capture", "info", "--json", str(path))
    assert json.loads(out.stdout)["counts"] == info["counts"]


def test_record_with_a_writer_process_pinned(sim: Any, tmp_path: Path) -> None:
    path = tmp_path / "process.arrows"
    cpu = max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    out = _cli("record", str(path), "--instruments", *KEYS[:2], "--duration", "1.5",
               "--url", sim.market_url, "--writer", "process", "--writer-cpus", str(cpu),
               env=_env())
    assert out.returncode == 0, out.stderr
    info = capture.info(path)
    assert info["complete"] and info["counts"]["frame"] > 100
    out = _cli("record", str(path), "--instruments", KEYS[0], "--writer-cpus", "-1",
               "--url", sim.market_url, env=_env())
    assert out.returncode == 2 and out.stderr.startswith("error: writer_cpus")
    assert len(out.stderr.strip().splitlines()) == 1


def test_ctrl_c_closes_the_file_cleanly(sim: Any, tmp_path: Path) -> None:
    path = tmp_path / "interrupted.arrows"
    proc = subprocess.Popen([sys.executable, "-m", "fastfeed", "record", str(path), "--instruments",
                             KEYS[0], "--mode", "ltpc", "--url", sim.market_url], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # A shell's background job starts with SIGINT ignored; Ctrl-C must count.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait(lambda: path.exists() and path.stat().st_size > 2000, timeout=60, what="a batch on disk")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "wrote" in stdout
    assert capture.info(path)["complete"]


def test_errors_are_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "UPSTOX_ACCESS_TOKEN"}
    out = _cli("record", str(tmp_path / "x.arrows"), "--instruments", KEYS[0], env=env)
    assert out.returncode == 2 and "UPSTOX_ACCESS_TOKEN" in out.stderr and "Traceback" not in out.stderr
    for args in (("replay", str(tmp_path / "missing.arrows")),
                 ("capture", "info", str(tmp_path / "missing.arrows"))):
        out = _cli(*args)
        assert out.returncode == 2 and out.stderr.startswith("error:") and "Traceback" not in out.stderr
    started = time.monotonic()
    out = _cli("record", str(tmp_path / "no-dir" / "x.arrows"), "--instruments", KEYS[0], env=_env())
    assert out.returncode == 2 and "Traceback" not in out.stderr and time.monotonic() - started < 60


def test_a_killed_recorder_leaves_a_readable_file(sim: Any, tmp_path: Path) -> None:
    # SIGKILL: no atexit, no flush. What was written (whole batches) reads back; the torn tail
    # and what was still in memory are lost.
    path = tmp_path / "killed.arrows"
    proc = subprocess.Popen([sys.executable, "-m", "fastfeed", "record", str(path), "--instruments",
                             *KEYS, "--mode", "full", "--url", sim.market_url], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Read while it is being written: the reader stops at the tail being written.
        wait(lambda: path.exists() and path.stat().st_size > 1000
             and capture.info(path)["batches"] >= 2, timeout=60, what="two batches on disk")
    finally:
        proc.kill()
        proc.wait(30)
    about = capture.info(path)
    assert not about["complete"] and about["batches"] >= 2
    frames = list(capture.frames(path))
    assert len(frames) == about["counts"]["frame"] > 0
    assert capture.replay(path).frames == len(frames)
