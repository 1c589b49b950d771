"""The `fastfeed` command (also `python -m fastfeed`). Each command lives in its own module under
fastfeed.cli, and only the chosen one is imported: `fastfeed sim` never loads the client."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from fastfeed.cli.errors import CommandError, describe

DESCRIPTION = """\
Upstox's real-time market data from Python at native speed.

Start with `fastfeed demo`: a local Upstox-compatible simulator and a live table, no account
needed. `fastfeed watch KEY ...` shows the same table for real Upstox instruments."""

EPILOG = """\
`fastfeed COMMAND --help` lists a command's options.
Errors are one line on stderr and a non-zero exit status (FASTFEED_DEBUG=1 shows the traceback)."""

# name -> (module, one line of help). The module has add_arguments(parser) and run(args) -> int.
COMMANDS = {
    "demo": ("fastfeed.cli.demo", "live table from the embedded simulator (no account needed)"),
    "watch": ("fastfeed.cli.watch", "live table from real Upstox (token in UPSTOX_ACCESS_TOKEN)"),
    "sim": ("fastfeed.cli.sim", "run the Upstox-compatible simulator until Ctrl-C"),
    "bench": ("fastfeed.cli.bench", "measure decode speed against upb and the official SDK"),
    "record": ("fastfeed.cli.record", "record a market feed session into a capture file"),
    "replay": ("fastfeed.cli.replay", "decode a capture file and print its counts and rate"),
    "capture": ("fastfeed.cli.capture", "capture files: info PATH"),
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; an option's default shown, unless it has none (None, a flag) or
    its help says it already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default == [] or default is argparse.SUPPRESS
                or "default" in text or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def _parser(chosen: str | None) -> tuple[argparse.ArgumentParser, object | None]:
    parser = argparse.ArgumentParser(prog="fastfeed", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=HelpFormatter)
    from fastfeed import __version__

    parser.add_argument("--version", action="version", version=f"fastfeed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands")
    module = None
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text,
                                 formatter_class=HelpFormatter)
        if name == chosen:
            module = _import(name, module_name)
            module.add_arguments(command)  # type: ignore[attr-defined]
    return parser, module


def _import(name: str, module_name: str) -> object:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in (None, module_name) or (exc.name or "").startswith("fastfeed"):
            raise
        raise CommandError(f"`fastfeed {name}` needs the package {exc.name!r}, which is not "
                           "installed: pip install 'fastfeed[demo]'") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser, module = _parser(chosen if chosen in COMMANDS else None)
        args = parser.parse_args(argv)
        assert module is not None  # parse_args exits on an unknown or missing command
        return int(module.run(args) or 0)  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        print("fastfeed: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("FASTFEED_DEBUG"):
            raise
        print(f"fastfeed: error: {describe(exc)}", file=sys.stderr)
        return exc.status if isinstance(exc, CommandError) else 1


if __name__ == "__main__":
    sys.exit(main())
