"""How an access token may appear anywhere: as a fingerprint, never itself. Shared by the client
and the simulator, which must each hide the tokens they see."""
from __future__ import annotations

import hashlib


def fingerprint(token: str) -> str:
    """A short, stable, non-reversible name for a token."""
    return "tok-" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:8]
