"""`python -m fastfeed capture info PATH`: a capture file's metadata, time range and counts."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from fastfeed import FastfeedError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="capture_command", required=True)
    info = sub.add_parser("info", help="metadata, time range and counts of a capture")
    info.add_argument("path", metavar="PATH")
    info.add_argument("--json", action="store_true", help="print it as one JSON object")


def _time(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat(timespec="milliseconds")


def run(args: argparse.Namespace) -> int:
    from fastfeed.capture import info

    try:
        about = info(args.path)
    except (FastfeedError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(about))
        return 0
    for key, value in about["metadata"].items():
        print(f"{key:<18}{value}")
    counts = about["counts"]
    print(f"{'from':<18}{_time(about['first_ns'])}")
    print(f"{'to':<18}{_time(about['last_ns'])}  ({about['seconds']:.3f} s)")
    print(f"{'records':<18}" + ", ".join(f"{counts[k]:,} {k}s" for k in counts))
    ratio = about["payload_bytes"] / max(about["file_bytes"], 1)
    print(f"{'bytes':<18}{about['payload_bytes']:,} payload, {about['file_bytes']:,} on disk "
          f"({ratio:.1f}x), {about['batches']:,} batches")
    print(f"{'complete':<18}{'yes' if about['complete'] else 'no: cut short, read to its last whole batch'}")
    return 0
