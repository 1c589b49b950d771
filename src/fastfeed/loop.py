"""The event loop fastfeed makes when it owns one (a background thread, the CLI): uvloop where
it exists. A loop the user already runs is never replaced."""
from __future__ import annotations

import asyncio


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # not on Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
