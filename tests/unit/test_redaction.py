"""Secrets are removed from what batchlens prints in every spelling a server may echo."""

from __future__ import annotations

import base64
import contextlib
from urllib.parse import quote

import pytest

from batchlens.errors import Redactor

KEY = "sk-proj-CANARY+/=9f3e_secret"


@pytest.mark.parametrize("before", ["", "x", "xy", "Authorization: Basic "])
@pytest.mark.parametrize("after", ["", "!", "?!"])
def test_a_base64_copy_at_any_offset_is_removed(before: str, after: str) -> None:
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        blob = encode(f"{before}{KEY}{after}".encode()).decode()
        redacted = Redactor([KEY])(f"the server said: {blob}")
        # what is left of the blob cannot be decoded back to the key
        leftover = redacted.rsplit(" ", 1)[-1].replace("***", "")
        assert KEY not in _decodable(leftover), (before, after, redacted)
        assert "***" in redacted


def test_clear_and_percent_encoded_copies_are_removed() -> None:
    text = f"Bearer {KEY} at https://api.example/v1?key={quote(KEY, safe='')}"
    redacted = Redactor([KEY])(text)
    assert KEY not in redacted and quote(KEY, safe="") not in redacted
    assert redacted == "Bearer *** at https://api.example/v1?key=***"


def test_short_values_are_not_secrets() -> None:
    assert Redactor(["abc"])("abc abc") == "abc abc"


def _decodable(text: str) -> str:
    """Everything that base64-decoding any window of `text` can give back."""
    out = []
    for start in range(4):
        chunk = text[start:]
        chunk = chunk[: len(chunk) - len(chunk) % 4]
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(ValueError):
                out.append(decode(chunk).decode("latin-1"))
    return "\n".join(out)
