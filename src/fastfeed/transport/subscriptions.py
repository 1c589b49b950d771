"""The subscriptions a market feed wants, per mode, checked against Upstox's caps.

Upstox drops keys beyond its caps without telling the client (observed); the book checks the
caps itself so that going over raises :class:`SubscriptionLimitError` instead.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable, Mapping

from fastfeed.errors import SubscriptionLimitError

MODES = ("ltpc", "full", "option_greeks", "full_d30")

# Keys per connection: (only this mode subscribed, several modes mixed). Upstox documents 1500
# for full_d30 when mixed, above its own single-mode 50; the smaller is the safe reading.
CAPS: Mapping[str, tuple[int, int]] = {
    "ltpc": (5000, 2000),
    "option_greeks": (3000, 2000),
    "full": (2000, 1500),
    "full_d30": (50, 50),
}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; Upstox's modes are {', '.join(MODES)}")
    return mode


def normalize_keys(keys: str | Iterable[str]) -> list[str]:
    """A list of distinct keys in first-seen order; a single string is one key."""
    if isinstance(keys, str):
        keys = [keys]
    out: dict[str, None] = {}
    for key in keys:
        if not isinstance(key, str) or "|" not in key:
            raise ValueError(f"not an Upstox instrument key (SEGMENT|IDENTIFIER): {key!r}")
        out[key] = None
    return list(out)


class SubscriptionBook:
    """Wanted subscriptions, key to mode. Every change is checked whole before it is applied."""

    def __init__(self, *, plus: bool = False, caps: Mapping[str, tuple[int, int]] | None = None,
                 max_instruments: int | None = None) -> None:
        self.plus = plus
        self.caps = dict(CAPS if caps is None else caps)
        self.max_instruments = max_instruments
        self.wanted: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.wanted)

    def __contains__(self, key: object) -> bool:
        return key in self.wanted

    def by_mode(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for key, mode in self.wanted.items():
            out.setdefault(mode, []).append(key)
        return out

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.wanted.values()))

    # -- changes (each returns the keys to put in the request) ---------------------------------
    def subscribe(self, keys: str | Iterable[str], mode: str, *, known: int = 0,
                  is_known: Callable[[str], bool] | None = None) -> list[str]:
        """Add `keys` in `mode` (keys already wanted move to `mode`).

        `known`/`is_known`: rows the decoder already has, for the max_instruments check.
        """
        check_mode(mode)
        keys = normalize_keys(keys)
        if mode == "full_d30" and not self.plus:
            raise SubscriptionLimitError("full_d30 (Upstox Plus only)", 0, len(keys),
                                         "pass plus=True if the account has Upstox Plus")
        after = dict(self.wanted)
        for key in keys:
            after[key] = mode
        self._check(after, known, is_known)
        self.wanted = after
        return keys

    def change_mode(self, keys: str | Iterable[str], mode: str) -> list[str]:
        check_mode(mode)
        keys = normalize_keys(keys)
        missing = [k for k in keys if k not in self.wanted]
        if missing:
            raise ValueError(f"change_mode of {len(missing)} key(s) not subscribed, e.g. {missing[0]!r}")
        if mode == "full_d30" and not self.plus:
            raise SubscriptionLimitError("full_d30 (Upstox Plus only)", 0, len(keys),
                                         "pass plus=True if the account has Upstox Plus")
        after = dict(self.wanted)
        for key in keys:
            after[key] = mode
        self._check(after, 0, None)
        self.wanted = after
        return keys

    def unsubscribe(self, keys: str | Iterable[str]) -> list[str]:
        keys = normalize_keys(keys)
        for key in keys:
            self.wanted.pop(key, None)
        return keys

    def _check(self, after: Mapping[str, str], known: int, is_known: Callable[[str], bool] | None) -> None:
        counts = Counter(after.values())
        mixed = sum(1 for c in counts.values() if c) > 1
        for mode, count in counts.items():
            single, mixed_cap = self.caps[mode]
            cap = mixed_cap if mixed else single
            if count > cap:
                kind = "modes mixed" if mixed else "single mode"
                raise SubscriptionLimitError(f"{mode} ({kind})", cap, count,
                                             f"Upstox ignores keys beyond it; now {dict(counts)}")
        if self.max_instruments is not None and is_known is not None:
            new_rows = sum(1 for key in after if not is_known(key))
            if known + new_rows > self.max_instruments:
                raise SubscriptionLimitError("max_instruments", self.max_instruments, known + new_rows,
                                             "the decoder's rows; build the feed with a larger "
                                             "max_instruments")
