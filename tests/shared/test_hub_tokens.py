"""The hub's token is read afresh for every connection attempt (the daily rollover)."""
from __future__ import annotations

from pathlib import Path

import pytest

from fastfeed import AuthenticationError, FeedConnectionError
from fastfeed.shared.hub import TOKEN_ENV, split_keys, token_source


def test_token_file_is_read_at_every_attempt(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token\n")
    source = token_source(str(path))
    assert source() == "first-token"
    path.write_text("rolled-over-token")
    assert source() == "rolled-over-token"
    path.write_text("   ")
    with pytest.raises(FeedConnectionError, match="empty"):
        source()
    path.unlink()  # mid-rollover: an error the connection loop retries, naming no token
    with pytest.raises(FeedConnectionError, match="cannot read the token file"):
        source()


def test_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    source = token_source(None)
    monkeypatch.setenv(TOKEN_ENV, "env-token")
    assert source() == "env-token"
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(AuthenticationError, match=TOKEN_ENV):
        source()


def test_instrument_arguments_may_be_comma_separated() -> None:
    assert split_keys(["NSE_EQ|A,NSE_EQ|B", "NSE_INDEX|Nifty 50", ""]) == [
        "NSE_EQ|A", "NSE_EQ|B", "NSE_INDEX|Nifty 50"]
