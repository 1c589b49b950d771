"""Inputs the fuzzer (fuzz/portfolio.py) found."""
import json

import pytest

from fastfeed.errors import PortfolioDecodeError
from fastfeed.portfolio import decode_update

GTT = {"update_type": "gtt_order", "type": "SINGLE", "exchange": "NSE_EQ",
       "instrument_token": "NSE_EQ|INE884C01088", "quantity": 5, "product": "D",
       "gtt_order_id": "GTT-C2602679547200009", "expires_at": 1764000000000,
       "created_at": 1763000000000,
       "rules": [{"strategy": "ENTRY", "status": "PENDING", "trigger_type": "ABOVE",
                  "trigger_price": 100.5, "transaction_type": "BUY"}]}


@pytest.mark.parametrize("where", ["rule key", "top-level key"])
def test_invalid_utf8_in_an_undeclared_key_is_refused(where):
    # 2026-12-01: msgspec skipped an unknown key without checking its UTF-8, so the frame was
    # accepted and `extra` raised msgspec.DecodeError later.
    frame = json.dumps(GTT).encode()
    assert decode_update(frame).rules[0].extra == {}
    if where == "rule key":
        bad = frame.replace(b'"status"', b'"sta\xb6tus_x"', 1)
    else:
        bad = frame.replace(b'"update_type"', b'"z\xb6": 1, "update_type"', 1)
    with pytest.raises(PortfolioDecodeError) as info:
        decode_update(bad)
    assert info.value.kind == "json"
    # valid UTF-8 beyond ASCII still decodes
    ok = decode_update(frame.replace(b'"status"', '"sta\u00e9tus_x": 1, "status"'.encode(), 1))
    assert dict(ok.rules[0].extra) == {"sta\u00e9tus_x": 1}
