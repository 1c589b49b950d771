"""Fixtures for the simulator tests: real sockets on 127.0.0.1, no mocks."""
from __future__ import annotations

import pytest


@pytest.fixture
def keys() -> list[str]:
    return ["NSE_INDEX|Nifty 50", "NSE_EQ|INE002A01018", "NSE_FO|43919", "MCX_FO|434855",
            "BSE_EQ|INE467B01029", "NSE_FO|35001"]
