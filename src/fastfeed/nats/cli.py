"""The NATS options of ``fastfeed hub``: ``--nats nats://HOST:PORT [--subject-prefix upstox]``."""
from __future__ import annotations

import argparse
from typing import Any

from fastfeed.nats.subjects import check_prefix


def _prefix(value: str) -> str:
    try:
        return check_prefix(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_nats_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--nats`` and ``--subject-prefix`` to `parser`."""
    g = parser.add_argument_group("NATS (needs fastfeed[nats])")
    g.add_argument("--nats", metavar="nats://HOST:PORT",
                   help="also publish every update to this NATS server (JetStream on); "
                        "several servers of one cluster: comma-separated")
    g.add_argument("--subject-prefix", type=_prefix, default="upstox", metavar="PREFIX",
                   help="subjects are PREFIX.<instrument>.<parts> (default: upstox)")


async def start_bridge(feed: Any, args: argparse.Namespace) -> Any:
    """Start a Bridge for `feed` on the running loop (the feed's) if ``--nats`` was given;
    returns it (await ``bridge.close()`` at the end), or None."""
    if not getattr(args, "nats", None):
        return None
    from fastfeed.nats.bridge import Bridge

    servers = [s.strip() for s in args.nats.split(",") if s.strip()]
    return await Bridge(feed, servers, prefix=args.subject_prefix).start()
