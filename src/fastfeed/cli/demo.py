"""`python -m fastfeed demo`: the simulator and a MarketFeed in one process, as a live table.

The simulator runs in its own thread (its own event loop); the feed runs in another; the main
thread draws. Without a TTY (CI) it runs for --duration (default 5 s) and prints a summary.
"""
from __future__ import annotations

import argparse
import logging
import sys

from fastfeed import MarketFeed
from fastfeed.errors import SubscriptionLimitError
from fastfeed.sim import SimulatorThread
from fastfeed.transport.subscriptions import CAPS, MODES

from .live import show

_TOKEN = "fastfeed-demo-token"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instruments", type=int, default=200, help="instruments to subscribe")
    parser.add_argument("--mode", choices=[m for m in MODES if m != "full_d30"], default="full")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds to run (default: until Ctrl-C; 5 without a TTY)")
    parser.add_argument("--rate", type=float, default=500.0, help="simulated frames per second")
    parser.add_argument("--instruments-per-frame", type=int, default=5)
    parser.add_argument("--tls", action="store_true", help="wss:// with the simulator's local CA")
    parser.add_argument("--log-level", default="WARNING")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The embedded simulator may write a few frames after the client has gone, which aiofastnet
    # reports once per write; that is the server's business, not the demo's.
    logging.getLogger("aiofastnet").setLevel(logging.ERROR)
    cap = CAPS[args.mode][0]  # one mode subscribed: Upstox's single-mode cap
    if not 1 <= args.instruments <= cap:
        print(f"error: --instruments must be between 1 and {cap} in {args.mode} mode "
              "(Upstox's cap)", file=sys.stderr)
        return 2
    duration = args.duration
    if duration is None and not sys.stdout.isatty():
        duration = 5.0
    with SimulatorThread(tokens=[_TOKEN], instruments=args.instruments, rate=args.rate,
                         instruments_per_frame=args.instruments_per_frame, tls=args.tls) as sim:
        try:
            feed = MarketFeed(_TOKEN, url=sim.market_url, instruments=sim.instruments,
                              mode=args.mode, ssl=sim.client_ssl_context() if args.tls else None,
                              max_instruments=max(4096, args.instruments))
        except (SubscriptionLimitError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        feed.start(timeout=10)
        title = f"fastfeed demo: {args.instruments} instruments, {args.mode}, simulator {sim.base_url}"
        return show(feed, title, duration)
