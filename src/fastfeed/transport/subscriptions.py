"""The subscriptions a market feed wants, per mode, checked against Upstox's caps.

Upstox drops keys beyond its caps without telling the client (observed); the book checks the
caps itself so that going over raises :class:`SubscriptionLimitError` instead.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Callable, Iterable, Mapping

from fastfeed.errors import SubscriptionLimitError
from fastfeed.schema import CAPS, MODE_ALIASES, MODES, PLUS_MODES

log = logging.getLogger(__name__)


def check_mode(mode: str) -> str:
    """`mode` as a subscription mode. The frames' name for one (``full_d5``, as `to_dict` shows
    it) is taken for the mode it stands for, and the log says so."""
    if mode in MODES:
        return mode
    alias = MODE_ALIASES.get(mode) if isinstance(mode, str) else None
    if alias is not None:
        log.info("mode %r is the frames' name (requestMode) for the subscription mode %r; "
                 "subscribing in %r", mode, alias, alias)
        return alias
    raise ValueError(f"unknown mode {mode!r}; Upstox's modes are {', '.join(MODES)}")


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
    """Wanted subscriptions, key to mode. Every change is checked whole before it is applied.

    A change costs O(keys changed): the per-mode counts are kept as keys come and go, and the
    ``max_instruments`` check looks at keys the decoder does not know yet only when the book is
    near that cap (see `subscribe`). Not thread-safe: MarketFeed holds a lock around it.
    """

    def __init__(self, *, plus: bool = False, caps: Mapping[str, tuple[int, int]] | None = None,
                 max_instruments: int | None = None) -> None:
        self.plus = plus
        self.caps = dict(CAPS if caps is None else caps)
        self.max_instruments = max_instruments
        self.wanted: dict[str, str] = {}
        self._counts: Counter[str] = Counter()
        # Every wanted key the decoder may not know yet (a superset: pruned when checked).
        self._unknown: set[str] = set()

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
        return dict(+self._counts)

    # -- changes (each returns the keys to put in the request) ---------------------------------
    def subscribe(self, keys: str | Iterable[str], mode: str, *, known: int = 0,
                  is_known: Callable[[str], bool] | None = None) -> list[str]:
        """Add `keys` in `mode` (keys already wanted move to `mode`).

        `known`/`is_known`: rows the decoder already has (their number, and a test of a key),
        for the max_instruments check: every wanted key the decoder does not know would take a
        row. Rows are never freed, so a key once known stays known.
        """
        keys = normalize_keys(keys)
        mode = self._check_mode(mode, keys)
        wanted = self.wanted
        counts = self._counts_after(keys, mode)
        self._check_caps(counts)
        added = [key for key in keys if key not in wanted]
        if self.max_instruments is not None and is_known is not None:
            self._check_rows(added, known, is_known)
        else:
            self._unknown.update(added)
        for key in keys:
            wanted[key] = mode
        self._counts = counts
        return keys

    def change_mode(self, keys: str | Iterable[str], mode: str) -> list[str]:
        keys = normalize_keys(keys)
        mode = self._check_mode(mode, keys)
        missing = [k for k in keys if k not in self.wanted]
        if missing:
            raise ValueError(f"change_mode of {len(missing)} key(s) not subscribed, e.g. {missing[0]!r}")
        counts = self._counts_after(keys, mode)
        self._check_caps(counts)
        for key in keys:
            self.wanted[key] = mode
        self._counts = counts
        return keys

    def unsubscribe(self, keys: str | Iterable[str]) -> list[str]:
        keys = normalize_keys(keys)
        counts = self._counts
        for key in keys:
            mode = self.wanted.pop(key, None)
            if mode is not None:
                counts[mode] -= 1
                self._unknown.discard(key)
        self._counts = +counts
        return keys

    # -- checks -----------------------------------------------------------------------------------
    def _check_mode(self, mode: str, keys: list[str]) -> str:
        mode = check_mode(mode)
        if mode in PLUS_MODES and not self.plus:
            raise SubscriptionLimitError(f"{mode} (Upstox Plus only)", 0, len(keys),
                                         "Upstox ignores such keys without Plus; pass plus=True "
                                         "if the account has Upstox Plus")
        return mode

    def _counts_after(self, keys: list[str], mode: str) -> Counter[str]:
        counts = Counter(self._counts)  # one entry per mode: a copy costs nothing
        wanted = self.wanted
        for key in keys:
            old = wanted.get(key)
            if old != mode:
                if old is not None:
                    counts[old] -= 1
                counts[mode] += 1
        return +counts  # modes left with no key are dropped

    def _check_caps(self, counts: Counter[str]) -> None:
        mixed = len(counts) > 1
        for mode, count in counts.items():
            single, mixed_cap = self.caps[mode]
            cap = mixed_cap if mixed else single
            if count > cap:
                kind = "modes mixed" if mixed else "single mode"
                raise SubscriptionLimitError(f"{mode} ({kind})", cap, count,
                                             f"Upstox ignores keys beyond it; now {dict(counts)}")

    def _check_rows(self, added: list[str], known: int, is_known: Callable[[str], bool]) -> None:
        limit = self.max_instruments
        assert limit is not None
        unknown = self._unknown
        if known + len(self.wanted) + len(added) <= limit:
            # Even if no wanted key had a row yet there would be room: nothing to look up.
            unknown.update(added)
            return
        # Near the cap: count the rows still to come, exactly.
        unknown.difference_update([key for key in unknown if is_known(key)])
        new = [key for key in added if not is_known(key)]
        needed = known + len(unknown) + len(new)
        if needed > limit:
            raise SubscriptionLimitError("max_instruments", limit, needed,
                                         "the decoder's rows; build the feed with a larger "
                                         "max_instruments")
        unknown.update(new)
