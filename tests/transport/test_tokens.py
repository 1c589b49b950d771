"""One scrubber (fastfeed.tokens.scrub) for the client, the portfolio decoder and the simulator."""
from __future__ import annotations

from fastfeed.tokens import Scrubber, fingerprint, scrub

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlLXRva2Vu"


def test_the_feeds_scrubber_hides_its_own_tokens_and_changes_nothing_else() -> None:
    s = Scrubber(keep=2)
    for token in ("first-token-1234567", "second-token-1234567", TOKEN):
        s.add(token)
    assert s.tokens == (TOKEN, "second-token-1234567")
    text = f"GET / Authorization: Bearer {TOKEN}\n  token = (await resolve_token(x))"
    assert s(text) == text.replace(TOKEN, fingerprint(TOKEN))
    assert s("first-token-1234567 is no longer hidden") == "first-token-1234567 is no longer hidden"


def test_patterns_hide_what_no_one_named() -> None:
    assert scrub(f"Bearer {TOKEN}") == f"Bearer {fingerprint(TOKEN)}"
    assert scrub(f"Bearer {TOKEN}", patterns=False) == f"Bearer {TOKEN}"
    assert scrub("token = value  # source code in a traceback") == \
        "token = value  # source code in a traceback"
    assert scrub('{"code": "abc123"}') == f'{{"code": "{fingerprint("abc123")}"}}'
