"""Inputs the fuzzer (fuzz/market.py) found, each checked against protobuf as the harness does."""
from __future__ import annotations

import pytest

import fastfeed
import strategies as S
from test_differential import check_to_dict
from test_malformed import busy_decoder, check_rejected_changes_nothing


def padded_length(n: int) -> str:
    """A zero length prefix written in n bytes (protobuf's varint allows the padding)."""
    return "80" * (n - 1) + "00"


FOUND = {
    # 2026-12-01: a length prefix of 9 bytes; upb reads a size as at most 5 bytes and rejects it.
    "long length prefix": "1200 1200 12" + padded_length(10),
}
# ... and the same rule at every depth and for every length-delimited field.
for n in (5, 6, 10):
    FOUND[f"feeds entry, {n}-byte length"] = "12" + padded_length(n)
    FOUND[f"key, {n}-byte length"] = "12" + f"{n + 1:02x}" + "0a" + padded_length(n)
    FOUND[f"unknown field, {n}-byte length"] = "2a" + padded_length(n)
    FOUND[f"ltpc, {n}-byte length"] = ("12" + f"{n + 6:02x}" + "0a01 4b" + "12" + f"{n + 1:02x}"
                                       + "0a" + padded_length(n))


@pytest.mark.parametrize("hexstr", list(FOUND.values()), ids=list(FOUND))
def test_found_by_fuzzing(hexstr):
    payload = bytes.fromhex(hexstr.replace(" ", ""))
    accepted = check_to_dict(payload) is not None
    assert accepted == (S.sdk_parse(payload) is not None)
    if accepted:
        assert busy_decoder().decode(payload) >= 0
    else:
        check_rejected_changes_nothing(busy_decoder(), payload)


def test_the_found_input_is_refused_with_its_reason():
    with pytest.raises(fastfeed.DecodeError) as info:
        fastfeed.to_dict(bytes.fromhex(FOUND["long length prefix"].replace(" ", "")))
    assert (info.value.offset, info.value.reason) == (5, "length prefix longer than 5 bytes")
