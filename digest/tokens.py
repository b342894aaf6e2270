"""Signed per-subscriber tokens for unsubscribe and preference links.

A token is `base64url(email) . base64url(HMAC-SHA256(secret, purpose|email))`:
no account or database lookup is needed to trust it, and changing any byte
of it breaks the signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import urlencode

from digest.errors import BadToken, DigestError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, purpose: str, email: str) -> bytes:
    message = f"{purpose}|{email}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def make_token(secret: str, email: str, purpose: str = "subscriber") -> str:
    if not secret:
        raise DigestError("DIGEST_SECRET_KEY is not set: generate one with `digest secret`")
    return f"{_b64(email.encode())}.{_b64(_signature(secret, purpose, email))}"


def read_token(secret: str, token: str, purpose: str = "subscriber") -> str:
    """Return the email the token was made for, or raise BadToken."""
    try:
        encoded_email, encoded_sig = token.split(".")
        email = _unb64(encoded_email).decode()
        signature = _unb64(encoded_sig)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadToken("this link is damaged or incomplete") from None
    if not secret or not hmac.compare_digest(signature, _signature(secret, purpose, email)):
        raise BadToken("this link is not valid")
    return email


def subscriber_url(public_url: str, secret: str, email: str, path: str = "unsubscribe") -> str:
    """An absolute link under DIGEST_PUBLIC_URL carrying the subscriber's token."""
    query = urlencode({"token": make_token(secret, email)})
    return f"{public_url.rstrip('/')}/{path}?{query}"
