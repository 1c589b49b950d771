"""The feed's vocabulary, in one table: modes, per-mode caps, enum names and request methods.

The client (subscriptions, requests, Quote, to_dict) and the simulator both import these, so a
change to Upstox's protocol is made here once. Names follow Upstox: a subscription request says
``full``, the frames it produces say ``requestMode: full_d5``; `MODES` and `REQUEST_MODE_NAMES`
are the same four modes, by RequestMode number, in those two words.
"""
from __future__ import annotations

from typing import Mapping

# Subscription modes, as a request names them (and as `Quote.mode` reports them), indexed by the
# RequestMode number the frames carry for each.
MODES = ("ltpc", "full", "option_greeks", "full_d30")
# RequestMode (Feed.requestMode) names on the wire, by number: what the SDK's dict shows.
REQUEST_MODE_NAMES = ("ltpc", "full_d5", "option_greeks", "full_d30")
# RequestMode number of each subscription mode.
REQUEST_MODE: Mapping[str, int] = {mode: number for number, mode in enumerate(MODES)}
# A wire name that is not a subscription mode, and the mode it stands for: accepted with an
# explanation rather than refused, since to_dict shows it.
MODE_ALIASES: Mapping[str, str] = {"full_d5": "full"}
# Depth levels each full mode carries.
DEPTH: Mapping[str, int] = {"full": 5, "full_d30": 30}
# Modes only an Upstox Plus account may subscribe.
PLUS_MODES = frozenset({"full_d30"})

# Keys per connection: (only this mode subscribed, several modes mixed). Upstox documents 1500
# for full_d30 when mixed, above its own single-mode 50; the smaller is the safe reading.
CAPS: Mapping[str, tuple[int, int]] = {
    "ltpc": (5000, 2000),
    "option_greeks": (3000, 2000),
    "full": (2000, 1500),
    "full_d30": (50, 50),
}

# Request frames' `method`.
METHODS = ("sub", "unsub", "change_mode")

# FeedResponse.type, by number.
TYPE_NAMES = ("initial_feed", "live_feed", "market_info")
# MarketStatus (MarketInfo.segmentStatus), by number.
STATUS_NAMES = ("PRE_OPEN_START", "PRE_OPEN_END", "NORMAL_OPEN", "NORMAL_CLOSE",
                "CLOSING_START", "CLOSING_END")
# Feed.FeedUnion branch that last updated a snapshot row, by its `kind` column ("none": never).
KIND_NAMES = ("none", "ltpc", "market", "index", "option_greeks")


def mode_of(request_mode: int) -> str:
    """The subscription mode of a RequestMode number; one this schema does not know is named
    ``requestMode_<n>`` (a str, as every mode is, and one `subscribe` refuses)."""
    return MODES[request_mode] if 0 <= request_mode < len(MODES) else f"requestMode_{request_mode}"
