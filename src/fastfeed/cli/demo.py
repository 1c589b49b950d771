"""`fastfeed demo`: the simulator and a MarketFeed in one process, as a live table.

The simulator runs in its own thread (its own event loop); the feed runs in another; the main
thread draws. Without a TTY (CI) it runs for --duration (default 5 s) and prints a summary.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

from fastfeed.schema import CAPS, MODES, PLUS_MODES

from .errors import CommandError
from .live import add_display_arguments, show
from .logs import configure_logging

_TOKEN = "fastfeed-demo-token"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instruments", type=int, default=200, metavar="N",
                        help="instruments to subscribe (at most Upstox's cap for the mode)")
    parser.add_argument("--mode", choices=[m for m in MODES if m not in PLUS_MODES], default="full",
                        help="subscription mode")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="seconds to run (default: until Ctrl-C; 5 without a terminal)")
    parser.add_argument("--rate", type=float, default=500.0, help="simulated frames per second")
    parser.add_argument("--instruments-per-frame", type=int, default=5, metavar="K",
                        help="at most this many instruments in one simulated frame")
    parser.add_argument("--tls", action="store_true", help="wss:// with the simulator's local CA")
    add_display_arguments(parser)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    # The embedded simulator may write a few frames after the client has gone, which aiofastnet
    # reports once per write; that is the server's business, not the demo's.
    logging.getLogger("aiofastnet").setLevel(logging.ERROR)
    cap = CAPS[args.mode][0]  # one mode subscribed: Upstox's single-mode cap
    if not 1 <= args.instruments <= cap:
        raise CommandError(f"--instruments must be between 1 and {cap} in {args.mode} mode "
                           "(Upstox's cap)", 2)
    duration = args.duration
    if duration is None and not sys.stdout.isatty():
        duration = 5.0
    started = time.monotonic()

    from fastfeed.market import MarketFeed
    from fastfeed.sim import SimulatorThread

    with SimulatorThread(tokens=[_TOKEN], instruments=args.instruments, rate=args.rate,
                         instruments_per_frame=args.instruments_per_frame, tls=args.tls) as sim:
        feed = MarketFeed(_TOKEN, url=sim.market_url, instruments=sim.instruments,
                          mode=args.mode, ssl=sim.client_ssl_context() if args.tls else None,
                          max_instruments=max(4096, args.instruments))
        try:
            feed.start(timeout=10)
        except BaseException:  # Ctrl-C while connecting included: close what was started
            feed.stop(timeout=1.0)
            raise
        title = f"fastfeed demo: {args.instruments} instruments, {args.mode}, simulator {sim.base_url}"
        remaining = None if duration is None else max(0.0, duration - (time.monotonic() - started))
        return show(feed, title, remaining, rows=args.rows)
