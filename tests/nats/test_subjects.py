"""The key <-> subject token mapping: reversible, and only valid NATS subject tokens."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from fastfeed.nats.subjects import (check_prefix, instrument_subject, key_of, parts_token,
                                    stream_name, token_of)

VALID_TOKEN_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-%")


@pytest.mark.parametrize("key, token", [
    ("NSE_EQ|INE002A01018", "NSE_EQ%7CINE002A01018"),
    ("NSE_INDEX|Nifty 50", "NSE_INDEX%7CNifty%2050"),
    ("BSE_INDEX|SENSEX.50*>", "BSE_INDEX%7CSENSEX%2E50%2A%3E"),
    ("a%b", "a%25b"),
])
def test_documented_examples(key, token):
    assert token_of(key) == token
    assert key_of(token) == key


@given(st.text(min_size=1))
def test_every_key_round_trips_through_a_valid_token(key):
    token = token_of(key)
    assert set(token) <= VALID_TOKEN_CHARS
    assert key_of(token) == key


@given(st.text(min_size=1))
def test_tokens_are_canonical(text):
    # key_of accepts exactly the tokens token_of makes.
    try:
        key = key_of(text)
    except ValueError:
        return
    assert token_of(key) == text


@pytest.mark.parametrize("bad", ["", "a b", "a.b", "%7c", "%41", "%", "%zz", "a*", ">", "%FF"])
def test_bad_tokens_are_refused(bad):
    with pytest.raises(ValueError):
        key_of(bad)


def test_subjects_and_prefixes():
    assert instrument_subject("upstox", "NSE_EQ|X", 1 | 16) == "upstox.NSE_EQ%7CX.ls"
    assert parts_token(63) == "ldgosi"
    assert check_prefix("desk.upstox") == "desk.upstox"
    assert stream_name("desk.upstox") == "FASTFEED_DESK_UPSTOX"
    for bad in ("", "a..b", "a b", "a.*", ">"):
        with pytest.raises(ValueError):
            check_prefix(bad)
    with pytest.raises(ValueError):
        token_of("")
