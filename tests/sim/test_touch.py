"""The simulator never shows a client an LTP outside the best bid and ask that client holds: a live
tick that leaves depth out never moves the price past the depth last sent."""
from __future__ import annotations

from typing import Any

import numpy as np

from fastfeed import MarketFeed
from fastfeed.sim import Simulator

from feed_helpers import wait_until
from sim_helpers import TOKEN, run

ROWS = 5000  # merged rows checked; 12 % of them were outside before the fix


def test_ltp_stays_within_the_touch_the_client_holds() -> None:
    checked = [0]
    outside: list[tuple[str, float, float, float]] = []

    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=2000, instruments_per_frame=10,
                             ping_interval=None) as sim:
            keys = sim.instruments[:40]
            # A second connection moves the same (shared) instruments without this client seeing.
            other = MarketFeed(TOKEN, url=sim.market_url, instruments=keys, mode="ltpc")
            feed = MarketFeed(TOKEN, url=sim.market_url, instruments=keys, mode="full")

            def check(records: Any) -> None:  # on the feed's loop, after the snapshot is updated
                rows = np.unique(records["row"])
                snap = feed.snapshot[rows]
                has_depth = snap["n_levels"] > 0
                bad = has_depth & ((snap["ltp"] < snap["bid_p"][:, 0]) |
                                   (snap["ltp"] > snap["ask_p"][:, 0]))
                for row in rows[bad]:
                    r = feed.snapshot[row]
                    outside.append((feed.store.key(int(row)), float(r["ltp"]),
                                    float(r["bid_p"][0]), float(r["ask_p"][0])))
                checked[0] += int(has_depth.sum())

            feed.on_update(check)
            async with other, feed:
                await wait_until(lambda: checked[0] >= ROWS, timeout=60, what="rows checked")

    run(main())
    assert not outside, f"{len(outside)} of {checked[0]} rows had LTP outside the touch: {outside[:5]}"
