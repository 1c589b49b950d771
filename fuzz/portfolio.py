"""Fuzz harness: the Portfolio Stream Feed decoder (`fastfeed.portfolio.decode_update`).

Any input either decodes to a typed update or raises PortfolioDecodeError; bytes that are not
JSON are always refused; nothing else may escape. Run with ``fuzz/run.sh portfolio``.
"""
from __future__ import annotations

import json

from fastfeed.errors import PortfolioDecodeError
from fastfeed.portfolio import decode_update


def check(data: bytes) -> None:
    try:
        json.loads(data)
        is_json: bool | None = True
    except ValueError:
        is_json = False
    except RecursionError:
        is_json = None  # too deep for the json module; msgspec may still take it
    try:
        update = decode_update(data)
    except PortfolioDecodeError as exc:
        assert exc.kind in ("json", "update_type", "missing", "type"), exc.kind
        assert len(exc.text) <= 2000 + 100
        return
    assert is_json is not False, f"decoded bytes that are not JSON: {data!r}"
    assert update.update_type in ("order", "position", "holding", "gtt_order"), update
    # The lazy paths: unknown keys are parsed from the kept frame on first use.
    assert all(isinstance(k, str) for k in update.extra)
    repr(update)


def TestOneInput(data: bytes) -> None:  # noqa: N802 (atheris' name)
    check(data)


if __name__ == "__main__":
    import sys

    import atheris

    # The decoder is Python over msgspec (not instrumented): coverage comes from Python code.
    atheris.instrument_all()
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
