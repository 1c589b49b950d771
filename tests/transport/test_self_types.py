"""`async with MarketFeed(...) as feed`, `with ... as feed` and `feed.start()` give the feed's own
type, so mypy knows `feed.wait_for`, `feed.quote`, `feed.updates`, `feed.orders`."""
from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

SCRIPT = '''
import asyncio
from fastfeed import MarketFeed, PortfolioFeed

async def main() -> None:
    async with MarketFeed("token", instruments=["NSE_EQ|INE002A01018"]) as feed:
        quote = await feed.wait_for("NSE_EQ|INE002A01018", timeout=5)
        print(quote.ltp, feed.quote("NSE_EQ|INE002A01018"))
        async for batch in feed.updates():
            print(batch.missed)
    async with PortfolioFeed("token") as portfolio:
        print(portfolio.orders)

def threaded() -> None:
    with MarketFeed("token") as feed:
        print(feed.snapshot, feed.quote("NSE_EQ|INE002A01018"))
    started = PortfolioFeed("token").start()
    print(started.orders)
    started.stop()

asyncio.run(main())
'''


# numpy, protobuf and picows are taken as they are: checking them is not this test's business.
CONFIG = """
[mypy]
strict = True
[mypy-numpy.*,google.*,picows.*,msgspec.*,uvloop.*]
follow_imports = skip
"""


def test_context_managers_and_start_return_the_feeds_own_type(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    config = tmp_path / "mypy.ini"
    config.write_text(CONFIG)
    out, err, status = api.run([str(script), "--config-file", str(config),
                                "--cache-dir", str(tmp_path / "cache")])
    assert status == 0, out + err
    # and the check can fail: the base class's type is not enough for the feed's own methods
    script.write_text("from fastfeed.transport import FeedClient\n"
                      "def f(feed: FeedClient) -> None:\n    feed.wait_for('x')\n")
    out, _, status = api.run([str(script), "--config-file", str(config),
                              "--cache-dir", str(tmp_path / "cache")])
    assert status == 1 and 'has no attribute "wait_for"' in out
