"""`python -m fastfeed <command>`: each command lives in its own module under fastfeed.cli."""
from __future__ import annotations

import argparse
import importlib
import sys

# Imported lazily so that `python -m fastfeed sim` does not pay for the client, and so on.
COMMANDS = {
    "bench": ("fastfeed.cli.bench", "compare decode speed with the official SDK and upb"),
    "sim": ("fastfeed.cli.sim", "run the Upstox-compatible simulator"),
    "demo": ("fastfeed.cli.demo", "live table from the embedded simulator"),
    "watch": ("fastfeed.cli.watch", "live table from real Upstox (UPSTOX_ACCESS_TOKEN)"),
    "record": ("fastfeed.cli.record", "record a market feed session into a capture file"),
    "replay": ("fastfeed.cli.replay", "decode a capture file and print its counts and rate"),
    "capture": ("fastfeed.cli.capture", "capture files: info PATH"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastfeed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    available = {}
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
        available[name] = module
    args = parser.parse_args(argv)
    return int(available[args.command].run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
