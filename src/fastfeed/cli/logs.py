"""The `--log-level` option every command has, and where the logs go (stderr)."""
from __future__ import annotations

import argparse
import logging
import sys

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_log_level(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str,
                  default: str = "WARNING") -> None:
    parser.add_argument("--log-level", default=default, choices=LEVELS, type=str.upper,
                        help=f"what {what} logs to stderr")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
