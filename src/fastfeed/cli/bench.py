"""`fastfeed bench`: decode cost against upb and the official SDK, as ratios.

Plain text, one table row per line and no line wider than about 90 characters, so that output
piped to a file or a pager never wraps in the middle of a word. What needs a package that is not
installed (the official SDK, websockets) is left out and named, with the extra that installs it.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any

from fastfeed.schema import MODES, PLUS_MODES

from .errors import CommandError

E2E_NEEDS = {"websockets+upb": "websockets", "sdk": "upstox_client"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="shorter rounds and fewer frames (noisier; about 15 s)")
    parser.add_argument("--e2e", action="store_true",
                        help="also end to end over loopback against the SDK streamer (minutes)")
    parser.add_argument("--e2e-mode", default="full", choices=[m for m in MODES if m not in PLUS_MODES],
                        help="subscription mode for --e2e")
    parser.add_argument("--e2e-per-frame", type=int, default=1, metavar="K",
                        help="instruments per frame for --e2e")
    parser.add_argument("--e2e-tls", action="store_true", help="--e2e over TLS (wss://)")
    parser.add_argument("--compat", action="store_true",
                        help="also messages/s of fastfeed.compat's streamer against the SDK's (a minute)")
    parser.add_argument("--latency", action="store_true",
                        help="only the wire-to-callback latency table against the SDK streamer "
                             "(a few minutes; see fastfeed.benchmark.latency)")
    parser.add_argument("--latency-seconds", type=_positive(float), default=3.0, metavar="S",
                        help="seconds of frames per client and rate for --latency")
    parser.add_argument("--latency-rates", type=_rates, default=(1000, 10000), metavar="R,R",
                        help="frames per second for --latency (default 1000,10000)")
    parser.add_argument("--shared", action="store_true",
                        help="only the shared-memory hub's delay to a reader in another process, "
                             "against a ZeroMQ relay (fastfeed.benchmark.shared)")
    parser.add_argument("--boost", action="store_true",
                        help="with --shared: readers in the real-time class (needs root)")


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value
    return parse


def _rates(text: str) -> tuple[int, ...]:
    return tuple(_positive(int)(part) for part in text.split(","))


def _shared(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("zmq") is None:
        raise CommandError("--shared measures against ZeroMQ: pip install 'fastfeed[zmq]'")
    from fastfeed.benchmark import shared

    _say("commit-to-read delay, reader in another process...", note=True)
    _say(shared.format_rows(shared.compare(2000 if args.quick else 5000, boost=args.boost)))
    return 0


def _say(text: str = "", *, note: bool = False) -> None:
    print(text, file=sys.stderr if note else sys.stdout, flush=True)


def _table(header: list[str], rows: list[list[str]], first_left: bool = True) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 and first_left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def run(args: argparse.Namespace) -> int:
    if args.shared:
        return _shared(args)
    if args.latency:
        return _latency(args)
    try:
        from fastfeed.benchmark import decode, portfolio
    except ModuleNotFoundError as exc:  # protobuf is a dependency; this is a broken install
        raise CommandError(f"bench needs {exc.name!r}: pip install fastfeed") from None

    # No spinner: its refresh thread would share the GIL and the cores with what is measured.
    budget = 0.02 if args.quick else 0.1
    _say("decoding the same frames with every available path...", note=True)
    rows = decode.compare(budget)
    paths = [p for p in ("upb", "upb+fields", "sdk") if any(p in r.ns for r in rows)]
    names = {"upb": "upb FromString", "upb+fields": "upb+fields", "sdk": "official SDK"}
    body = []
    for r in rows:
        cells = [r.case, f"{r.size:,}", f"{r.ns['fastfeed']:,.0f}", f"{r.gb_per_s:.2f}"]
        cells += [f"{r.ns[p]:,.0f} ({r.ratio(p):.1f}x)" if p in r.ns else "-" for p in paths]
        body.append(cells)
    _say(f"Decode cost per frame, ns, best of {decode.ROUNDS} interleaved rounds; in brackets "
         "the time over fastfeed's")
    _say(_table(["frame", "bytes", "fastfeed", "GB/s", *(names[p] for p in paths)], body))
    if not decode.sdk_available():
        _say(f"official SDK column left out: pip install 'fastfeed[{decode.SDK_EXTRA}]' "
             "installs upstox-python-sdk")
    elif args.quick:
        _say("(--quick leaves the SDK out on frames over 10 KB)")
    _say()
    _say("allocations and per-update cost...", note=True)
    transient, blocks = decode.allocations_per_frame(50_000 if args.quick else 200_000)
    few = decode.cost_per_update(10, budget_s=budget)
    many = decode.cost_per_update(5000, budget_s=budget)
    _say(f"Python objects per decoded frame: {transient} bytes at tracemalloc's peak "
         "(0: none, not even a temporary)")
    _say(f"net memory blocks per frame: {blocks:.5f}")
    _say(f"ns per update, 10 instruments: {few:,.0f}; 5,000 instruments: {many:,.0f} "
         f"({many / few:.2f}x)")
    frames = 1_000_000 if args.quick else 10_000_000
    _say(f"resident memory over {frames:,} frames...", note=True)
    before, after = decode.rss_growth(frames)
    _say(f"resident memory over {frames:,} frames: {before / 2**20:,.1f} MiB before, "
         f"{after / 2**20:,.1f} MiB after")
    _say()
    _say("portfolio updates: typed records against json.loads...", note=True)
    _say(portfolio.format_rows(portfolio.compare(budget_s=budget)))

    if args.e2e:
        from fastfeed.benchmark import e2e

        clients = tuple(c for c in e2e.CLIENTS
                        if c not in E2E_NEEDS or importlib.util.find_spec(E2E_NEEDS[c]))
        _say()
        _say("end to end over loopback (each client against its own server)...", note=True)
        _say(e2e.format_rows(e2e.compare(mode=args.e2e_mode, per_frame=args.e2e_per_frame,
                                         clients=clients, tls=args.e2e_tls)))
        left_out = [c for c in e2e.CLIENTS if c not in clients]
        if left_out:
            _say(f"left out: {', '.join(left_out)}: pip install 'fastfeed[{decode.SDK_EXTRA}]' "
                 "installs upstox-python-sdk and websockets")
    if args.compat:
        _say()
        if not decode.sdk_available():
            _say(f"--compat left out: it runs against the SDK streamer; pip install "
                 f"'fastfeed[{decode.SDK_EXTRA}]' installs upstox-python-sdk")
        else:
            from fastfeed.benchmark import compat

            _say("message listeners: fastfeed.compat against the SDK streamer...", note=True)
            _say(compat.format_rows(compat.compare()))
    return 0


def _latency(args: argparse.Namespace) -> int:
    missing = [name for name in E2E_NEEDS.values() if not importlib.util.find_spec(name)]
    if missing:
        from fastfeed.benchmark.decode import SDK_EXTRA

        raise CommandError(f"--latency runs against the SDK streamer and websockets: pip install "
                           f"'fastfeed[{SDK_EXTRA}]' (missing: {', '.join(missing)})")
    from fastfeed.benchmark import latency

    _say("wire-to-callback latency, each client against its own server...", note=True)
    _say(latency.format_rows(latency.compare(rates=args.latency_rates, seconds=args.latency_seconds)))
    _say(latency.format_floor(latency.cold_floor()))
    return 0
