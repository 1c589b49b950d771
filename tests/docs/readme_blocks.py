"""The ```python blocks of README.md, for the tests that run them and type-check them."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
NEEDS_ACCOUNT = "# needs an Upstox account"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[int, str]]:
    """(line number, code) of every ```python block."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _BLOCK.finditer(text)]


def runnable() -> list[tuple[int, str]]:
    """The blocks that start the embedded simulator themselves (every one not marked)."""
    return [(line, code) for line, code in blocks() if not code.startswith(NEEDS_ACCOUNT)]
