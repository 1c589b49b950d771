"""The per-frame path: no Python objects kept per frame, no growth with the frame count."""
from __future__ import annotations

import gc
import sys

from fastfeed import MarketFeed, ReconnectPolicy
from fastfeed.sim import Simulator

from market_helpers import TOKEN, run, wait_until


def test_memory_does_not_grow_with_frames() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], bench=True, instruments=50, instruments_per_frame=2,
                             ping_interval=None) as sim:
            feed = MarketFeed(TOKEN, url=sim.market_url, instruments=sim.instruments, mode="full",
                              reconnect=ReconnectPolicy.disabled(), ping_interval=None)
            async with feed:
                await wait_until(lambda: feed.decoder.frames >= 20_000, timeout=30, what="warm-up")
                gc.collect()
                before_frames, before = feed.decoder.frames, sys.getallocatedblocks()
                await wait_until(lambda: feed.decoder.frames >= before_frames + 100_000, timeout=60,
                                 what="100k frames")
                gc.collect()
                grown = sys.getallocatedblocks() - before
                frames = feed.decoder.frames - before_frames
                # The simulator shares this process and loop, so allow it some slack; a leak of
                # even one block per frame would be 100,000.
                assert grown < 2_000, f"{grown} blocks over {frames} frames"
                assert feed.stats()["decode_errors"] == 0
    run(main(), timeout=90)
