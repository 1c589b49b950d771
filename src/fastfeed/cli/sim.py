"""`fastfeed sim`: run the Upstox-compatible simulator until interrupted.

The first line of stdout is the base URL (ws://host:port or wss://host:port); the rest of what
it has to say goes to stderr.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import os
import signal
import sys
import tempfile

from fastfeed.errors import FastfeedError
from fastfeed.loop import new_event_loop
from fastfeed.sim import Faults, Simulator
from fastfeed.sim.frames import PHASES

from .errors import CommandError
from .logs import add_log_level, configure_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser.add_argument_group("server")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    p.add_argument("--token", action="append", default=[], metavar="T",
                   help="accept this standard token (repeatable); with none, any token is accepted "
                        "as a standard one")
    p.add_argument("--plus-token", action="append", default=[], metavar="T",
                   help="accept this Upstox Plus token (full_d30, 5 connections)")
    p.add_argument("--tls", action="store_true", help="serve wss:// with a throwaway local CA")
    p.add_argument("--ca-file", help="where --tls writes the CA PEM (default: a temp file)")
    p.add_argument("--redirect-status", type=int, choices=(302, 307), default=302,
                   help="status of the redirect to the one-time URL")
    p.add_argument("--ping-interval", type=float, default=10.0, help="idle seconds before a PING")
    p.add_argument("--ping-timeout", type=float, default=5.0, help="seconds to wait for the PONG")
    add_log_level(p, "the simulator")
    f = parser.add_argument_group("feed")
    f.add_argument("--instruments", type=int, default=100, help="size of the generated universe")
    f.add_argument("--rate", type=float, default=20.0, help="live_feed frames per second per connection")
    f.add_argument("--instruments-per-frame", type=int, default=5,
                   help="at most this many instruments in one live_feed frame")
    f.add_argument("--seed", type=int, default=0, help="the same seed gives the same prices")
    f.add_argument("--phase", choices=PHASES, default="open",
                   help="market_info status; pre_open fills LTPC.iep and the auction fields")
    f.add_argument("--portfolio-rate", type=float, default=5.0, help="portfolio updates per second")
    f.add_argument("--bench", action="store_true",
                   help="push a pre-encoded frame pool as fast as the socket drains")
    f.add_argument("--bench-frames", type=int, help="in --bench, close with 1000 after this many frames")
    f.add_argument("--bench-rate", type=float, metavar="FPS",
                   help="in --bench, push the pool at this many frames per second, not as fast as it drains")
    f.add_argument("--replay", metavar="PATH",
                   help="serve this market capture to every client that subscribes")
    f.add_argument("--speed", type=float, metavar="X",
                   help="with --replay: X times the recorded pace (default: as fast as it drains)")
    x = parser.add_argument_group("fault switches (apply to every new connection)")
    x.add_argument("--abort-after-frames", type=int, metavar="N",
                   help="drop the TCP connection, without a close frame, after N frames")
    x.add_argument("--abort-after-seconds", type=float, metavar="T", help="the same after T seconds")
    x.add_argument("--close-after-frames", type=int, metavar="N",
                   help="close with --close-code after N frames")
    x.add_argument("--close-after-seconds", type=float, metavar="T", help="the same after T seconds")
    x.add_argument("--close-code", type=int, default=1011, choices=(1000, 1001, 1011, 1012, 1013),
                   help="close code of --close-after-*")
    x.add_argument("--malformed-every", type=int, metavar="N",
                   help="every Nth frame is bytes protobuf rejects")
    x.add_argument("--fragment-size", type=int, metavar="B",
                   help="split frames into WebSocket continuation fragments of B bytes")
    x.add_argument("--stall-seconds", type=float, metavar="T", help="socket open, no data, for T seconds")
    x.add_argument("--stall-after-frames", type=int, default=0, metavar="N",
                   help="start the stall after N frames")
    x.add_argument("--oversized-every", type=int, metavar="N", help="every Nth frame is very large")
    x.add_argument("--oversized-instruments", type=int, default=2000, metavar="K",
                   help="instruments in an oversized frame")
    x.add_argument("--refuse-seconds", type=float, metavar="T",
                   help="answer 503 to every connection for T seconds")
    x.add_argument("--ignore-pongs", action="store_true",
                   help="let the server's liveness check fire (no PONG counts)")
    x.add_argument("--ignore-pings", action="store_true", help="do not answer client PINGs")


def _faults(args: argparse.Namespace) -> Faults:
    return Faults(
        abort_after_frames=args.abort_after_frames, abort_after_seconds=args.abort_after_seconds,
        close_after_frames=args.close_after_frames, close_after_seconds=args.close_after_seconds,
        close_code=args.close_code, malformed_every=args.malformed_every,
        fragment_size=args.fragment_size, stall_seconds=args.stall_seconds,
        stall_after_frames=args.stall_after_frames, oversized_every=args.oversized_every,
        oversized_instruments=args.oversized_instruments, ignore_pongs=args.ignore_pongs,
        ignore_pings=args.ignore_pings,
    )


async def _serve(args: argparse.Namespace) -> None:
    sim = Simulator(
        host=args.host, port=args.port, tokens=args.token or None, plus_tokens=args.plus_token,
        instruments=args.instruments, rate=args.rate,
        instruments_per_frame=args.instruments_per_frame, seed=args.seed, tls=args.tls,
        redirect_status=args.redirect_status, ping_interval=args.ping_interval or None,
        ping_timeout=args.ping_timeout, faults=_faults(args), phase=args.phase, bench=args.bench,
        bench_frames=args.bench_frames, bench_rate=args.bench_rate, portfolio_rate=args.portfolio_rate,
        replay=args.replay, replay_speed=args.speed,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C still raises
            pass
    async with sim:
        # The CA file is written before the URL is printed: a script that waits for the first
        # line may use both at once.
        if args.tls:
            path = args.ca_file
            if path is None:
                with tempfile.NamedTemporaryFile("wb", suffix="-fastfeed-sim-ca.pem", delete=False) as f:
                    path = f.name
            sim.write_ca(path)
            print(f"CA certificate: {path}", file=sys.stderr, flush=True)
        print(sim.base_url, flush=True)
        if args.refuse_seconds:
            sim.refuse_connections(args.refuse_seconds)
        print(f"market feed:    {sim.market_url}\nportfolio feed: {sim.portfolio_url}\n"
              f"authorize:      {sim.authorize_url()}\n"
              f"instruments:    {len(sim.instruments)} (e.g. {', '.join(sim.instruments[:3])})",
              file=sys.stderr, flush=True)
        await stop.wait()


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    if args.replay is not None and not os.path.isfile(args.replay):
        raise CommandError(f"--replay {args.replay}: no such file", 2)
    if args.bench_rate is not None and not args.bench:
        raise CommandError("--bench-rate paces --bench: give both", 2)
    loop = new_event_loop()
    try:
        loop.run_until_complete(_serve(args))
    except KeyboardInterrupt:
        pass
    except (FastfeedError, ValueError) as exc:  # a --replay file that is not a capture
        raise CommandError(str(exc), 2) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(f"cannot listen on {args.host}:{args.port}: the port is already in "
                               "use (pick another --port, or 0 for a free one)") from None
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    finally:
        loop.close()
    return 0
