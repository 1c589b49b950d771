"""`fastfeed watch KEY ...`: the live table from real Upstox, token from UPSTOX_ACCESS_TOKEN."""
from __future__ import annotations

import argparse
import os
import time
from typing import Any

from fastfeed.schema import MODES, PLUS_MODES

from .errors import CommandError
from .live import add_display_arguments, show
from .logs import configure_logging

CONNECT_TIMEOUT = 20.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("keys", nargs="+", metavar="KEY",
                        help="instrument keys, e.g. 'NSE_EQ|INE002A01018' 'NSE_INDEX|Nifty 50'")
    parser.add_argument("--mode", choices=MODES, default="full", help="subscription mode")
    parser.add_argument("--plus", action="store_true",
                        help="the account has Upstox Plus (needed for full_d30)")
    parser.add_argument("--authorize", action="store_true",
                        help="get the one-time URL from the REST authorize endpoint first")
    parser.add_argument("--url", default=None,
                        help="feed URL (default: Upstox's v3 market-data feed)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds for the whole run, connecting included (default: until Ctrl-C)")
    add_display_arguments(parser)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    if args.mode in PLUS_MODES and not args.plus:
        raise CommandError(f"--mode {args.mode} needs Upstox Plus, and Upstox ignores such keys "
                           "without it (no data, no error); pass --plus if the account has Plus, "
                           "or use --mode full", 2)
    token = os.environ.get("UPSTOX_ACCESS_TOKEN", "").strip()
    if not token:
        raise CommandError("set UPSTOX_ACCESS_TOKEN to your Upstox access token "
                           "(https://upstox.com/developer/api-documentation/authentication)", 2)
    if args.duration is not None and args.duration <= 0:
        raise CommandError("--duration must be positive", 2)
    deadline = None if args.duration is None else time.monotonic() + args.duration

    from fastfeed import AuthenticationError, MarketFeed

    try:
        feed = MarketFeed(token, url=args.url, instruments=args.keys, mode=args.mode,
                          plus=args.plus, authorize=args.authorize)
    except ValueError as exc:  # a malformed key, or over a cap
        raise CommandError(str(exc), 2) from None
    problems: list[str] = []  # why each connection attempt failed
    feed.on("error", lambda exc: problems.append(str(exc)))
    timeout = CONNECT_TIMEOUT if deadline is None else min(CONNECT_TIMEOUT, args.duration)
    try:
        feed.start(timeout=timeout)
    except AuthenticationError as exc:
        raise CommandError(f"Upstox refused the token: {exc}") from None
    except TimeoutError:
        last = f" (last error: {problems[-1]})" if problems else ""
        raise CommandError(f"could not connect to {feed.url} within {timeout:g} s{last}") from None
    except BaseException:  # Ctrl-C while connecting: close what was started, then say so
        feed.stop(timeout=1.0)
        raise
    remaining: Any = None if deadline is None else max(0.0, deadline - time.monotonic())
    return show(feed, f"fastfeed watch: {len(args.keys)} instrument(s), {args.mode}", remaining,
                rows=args.rows)
