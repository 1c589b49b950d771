"""`fastfeed hub --share NAME ...`: one Upstox connection shared with every local process through
shared memory (fastfeed.attach(NAME)), with Prometheus metrics. Runs until SIGTERM or Ctrl-C."""
from __future__ import annotations

import argparse
import logging
import sys

from fastfeed.errors import FastfeedError
from fastfeed.loop import new_event_loop
from fastfeed.nats.cli import add_nats_arguments
from fastfeed.schema import MODES

from .errors import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--share", required=True, metavar="NAME",
                        help="segment name readers attach to (/dev/shm/NAME)")
    parser.add_argument("--instruments", nargs="*", default=[], metavar="KEY",
                        help="instrument keys to subscribe (also comma-separated); readers can "
                             "ask for more")
    parser.add_argument("--mode", choices=MODES, default="full")
    parser.add_argument("--url", default=None, help="feed URL (default: Upstox's v3 market feed)")
    parser.add_argument("--plus", action="store_true", help="the account has Upstox Plus")
    parser.add_argument("--authorize", action="store_true",
                        help="get the one-time URL from the REST authorize endpoint first")
    parser.add_argument("--token-file", default=None, metavar="PATH",
                        help="read the access token from PATH at every connection attempt "
                             "(default: UPSTOX_ACCESS_TOKEN)")
    parser.add_argument("--metrics-port", type=int, default=None, metavar="P",
                        help="serve Prometheus metrics on this port (0: any free port)")
    parser.add_argument("--metrics-host", default="127.0.0.1",
                        help="address of the metrics endpoint")
    parser.add_argument("--max-instruments", type=int, default=4096,
                        help="snapshot rows in the shared store")
    parser.add_argument("--ring-capacity", type=int, default=1 << 16,
                        help="update records in the shared ring (a power of two)")
    parser.add_argument("--log-level", default="INFO", help="logging level, to stderr")
    add_nats_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from fastfeed.shared.hub import build_hub

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loop = new_event_loop()
    try:
        hub = build_hub(args)
        loop.run_until_complete(hub.serve())
    except (FastfeedError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    finally:
        loop.close()
    return 0
