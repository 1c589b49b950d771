"""Shared set-up for the decoder's differential tests (fixtures live in the test modules)."""
from __future__ import annotations

import os
import sys
import time

# fastfeed is built in place under src/; use it from there when it is not installed.
_SRC = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "src")
try:
    import fastfeed  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.abspath(_SRC))
    for _attempt in range(3):  # the extension may be mid-rebuild
        try:
            import fastfeed  # noqa: F401
            break
        except ImportError:
            if _attempt == 2:
                raise
            time.sleep(20)
