"""Signed link tokens: opaque, exact, and compatible with the links already sent."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from digest.models import DigestError, Subscriber
from digest.tokens import BadToken, make_token, read_token

SECRET = "token-test-secret"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _old_style(email: str) -> str:
    mac = hmac.new(SECRET.encode(), f"subscriber|{email}".encode(), hashlib.sha256).digest()
    return f"{_b64(email.encode())}.{_b64(mac)}"


def test_a_token_names_an_opaque_id_and_decodes_to_no_address() -> None:
    ann = Subscriber(email="ann@example.com")
    token = make_token(SECRET, ann.public_id)

    assert read_token(SECRET, token).public_id == ann.public_id
    for part in token.split("."):
        decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        assert b"ann@example.com" not in decoded and b"example" not in decoded
    assert _b64(b"ann@example.com") not in token
    with pytest.raises(DigestError, match="public id"):
        make_token(SECRET, "ann@example.com")  # an address is never put in a token


def test_old_style_tokens_still_name_their_address() -> None:
    subject = read_token(SECRET, _old_style("bob@example.org"))
    assert (subject.public_id, subject.email) == (None, "bob@example.org")


@pytest.mark.parametrize("style", ["new", "old"])
def test_only_the_exact_canonical_spelling_verifies(style: str) -> None:
    token = make_token(SECRET, "abcDEF123_-xyz") if style == "new" else _old_style("c@d.example")
    head, signature = token.split(".")
    last = ALPHABET.index(signature[-1])
    # The last of 43 characters carries 2 unused bits: three neighbours decode the same.
    same_bytes = [ALPHABET[(last & ~3) | low] for low in range(4) if (last & 3) != low]
    respellings = [f"{head}.{signature[:-1]}{c}" for c in same_bytes] + [
        f"{head}.{signature}=",
        f"{head}=.{signature}",
        f"{head}.{signature[:5]}\n{signature[5:]}",
        f"{head}.{signature[:5]} {signature[5:]}",
        f"{head}.{signature[:5]}*{signature[5:]}",
        f"{head}.{signature.swapcase()}",
        token + ".",
    ]
    assert read_token(SECRET, token)
    for respelled in respellings:
        with pytest.raises(BadToken):
            read_token(SECRET, respelled)
    with pytest.raises(BadToken):
        read_token("another-secret", token)
    with pytest.raises(BadToken):
        read_token(SECRET, token, purpose="something-else")
