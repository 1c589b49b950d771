"""`python -m fastfeed record PATH --instruments KEY ... --mode M`: record a market feed session
into a capture file (token from UPSTOX_ACCESS_TOKEN). A live line shows frames, bytes and the
file's size; Ctrl-C (or --duration) closes the file cleanly."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from fastfeed import AuthenticationError, FastfeedError, MarketFeed
from fastfeed.capture.file import COMPRESSIONS
from fastfeed.capture.recorder import WRITERS
from fastfeed.transport.subscriptions import MODES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="the capture file to write (Arrow IPC)")
    parser.add_argument("--instruments", nargs="+", required=True, metavar="KEY",
                        help="instrument keys, e.g. 'NSE_EQ|INE002A01018'")
    parser.add_argument("--mode", choices=MODES, default="full")
    parser.add_argument("--duration", type=float, default=None, help="seconds to record (default: until Ctrl-C)")
    parser.add_argument("--url", default=None, help="feed URL (default: Upstox's v3 market feed)")
    parser.add_argument("--plus", action="store_true", help="the account has Upstox Plus (full_d30)")
    parser.add_argument("--compression", choices=COMPRESSIONS, default="lz4")
    parser.add_argument("--writer", choices=WRITERS, default="thread",
                        help="compress and write in a thread, or in a process of its own (for "
                             "a full-rate feed: it does not share the feed's GIL)")
    parser.add_argument("--writer-cpus", type=int, nargs="+", default=None, metavar="CPU",
                        help="pin the writer to these CPUs, off the receiving core (Linux)")
    parser.add_argument("--log-level", default="WARNING")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GB"


def _line(feed: MarketFeed, started: float) -> str:
    rec = feed.recording
    stats = rec.stats() if rec is not None else {"records": 0, "bytes": 0, "file_bytes": 0, "dropped": 0}
    line = (f"{time.monotonic() - started:7.1f} s  frames {feed.decoder.frames:,}  "
            f"bytes {_size(stats['bytes'])}  file {_size(stats['file_bytes'])}")
    return line + (f"  dropped {stats['dropped']:,}" if stats["dropped"] else "")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = os.environ.get("UPSTOX_ACCESS_TOKEN", "").strip()
    if not token:
        print("error: set UPSTOX_ACCESS_TOKEN to your Upstox access token", file=sys.stderr)
        return 2
    try:
        feed = MarketFeed(token, url=args.url, instruments=args.instruments, mode=args.mode,
                          plus=args.plus)
        feed.record(args.path, compression=args.compression, writer=args.writer,
                    writer_cpus=args.writer_cpus)
    except (FastfeedError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        feed.start(timeout=20)
    except AuthenticationError as exc:
        feed.stop()
        print(f"error: Upstox refused the token: {exc}", file=sys.stderr)
        return 1
    except (FastfeedError, ValueError, TimeoutError, OSError) as exc:
        feed.stop()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    live = sys.stdout.isatty()
    started = time.monotonic()
    deadline = started + args.duration if args.duration is not None else None
    gave_up = False
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
            if live:
                print("\r" + _line(feed, started), end="", flush=True)
            if not feed.running:  # the feed stopped on its own (token refused, retries spent)
                gave_up = True
                break
    except KeyboardInterrupt:
        pass
    line = _line(feed, started)
    stats = feed.stop_recording()
    feed.stop()
    print(("\r" if live else "") + line)
    if stats is not None:
        print(f"wrote {stats['path']}: {stats['records']:,} records, {_size(stats['file_bytes'])}"
              + (f", {stats['dropped']:,} dropped" if stats["dropped"] else ""))
    if gave_up:
        print(f"error: the feed stopped: {feed.error}", file=sys.stderr)
        return 1
    return 0
