"""`python -m fastfeed watch KEY ...`: the live table from real Upstox, token from
UPSTOX_ACCESS_TOKEN."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from fastfeed import AuthenticationError, MarketFeed
from fastfeed.transport.subscriptions import MODES

from .live import show


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("keys", nargs="+", metavar="KEY", help="instrument keys, e.g. 'NSE_EQ|INE002A01018'")
    parser.add_argument("--mode", choices=MODES, default="full")
    parser.add_argument("--plus", action="store_true", help="the account has Upstox Plus (full_d30)")
    parser.add_argument("--authorize", action="store_true",
                        help="get the one-time URL from the REST authorize endpoint first")
    parser.add_argument("--url", default=None, help="feed URL (default: Upstox's v3 market feed)")
    parser.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    parser.add_argument("--log-level", default="WARNING")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = os.environ.get("UPSTOX_ACCESS_TOKEN", "").strip()
    if not token:
        print("error: set UPSTOX_ACCESS_TOKEN to your Upstox access token "
              "(https://upstox.com/developer/api-documentation/authentication)", file=sys.stderr)
        return 2
    try:
        feed = MarketFeed(token, url=args.url, instruments=args.keys, mode=args.mode,
                          plus=args.plus, authorize=args.authorize)
        feed.start(timeout=20)
    except AuthenticationError as exc:
        print(f"error: Upstox refused the token: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TimeoutError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return show(feed, f"fastfeed watch: {len(args.keys)} instrument(s), {args.mode}", args.duration)
