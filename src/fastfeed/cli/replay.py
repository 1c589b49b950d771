"""`python -m fastfeed replay PATH [--speed X]`: decode a market capture and print its frames,
updates, instruments and the replay rate."""
from __future__ import annotations

import argparse
import sys

from fastfeed import FastfeedError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a market capture file")
    parser.add_argument("--speed", type=float, default=None, metavar="X",
                        help="X times the recorded pace (default: as fast as possible)")


def run(args: argparse.Namespace) -> int:
    from fastfeed.capture import play

    try:
        decoder, counts = play(args.path, speed=args.speed)
    except (FastfeedError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = max(counts.seconds, 1e-9)
    print(f"frames       {counts.frames:,}" + (f" ({counts.errors:,} refused by the decoder)"
                                                if counts.errors else ""))
    print(f"updates      {counts.updates:,}")
    print(f"instruments  {len(decoder.store):,}")
    print(f"requests     {counts.requests:,}   gaps {counts.gaps:,}")
    print(f"rate         {counts.frames / seconds:,.0f} frames/s, {counts.updates / seconds:,.0f} "
          f"updates/s, {counts.payload_bytes / seconds / 1e6:,.1f} MB/s ({seconds:.3f} s)")
    return 0
