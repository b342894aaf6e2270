"""Signed per-subscriber tokens for unsubscribe and preference links.

A token is `public_id . base64url(HMAC-SHA256(secret, purpose-id|public_id))`.
The public id is random and opaque (the subscribers table's public_id), so a link
says nothing about who it is for, not even encoded, and it keeps working when
the subscriber's address changes. No database lookup is needed to trust it.

Tokens sent before public ids existed are `base64url(email) . signature` and
keep working: a link already in someone's inbox must still unsubscribe them.

Only the exact canonical spelling verifies: base64 decoders ignore padding,
stray characters and the unused bits of the last character, so the signature
is compared as text against its one correct encoding, in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from digest.errors import BadToken, DigestError

_PUBLIC_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class TokenSubject:
    """Who a valid token names: an opaque public id, or (old tokens) an address."""

    public_id: str | None = None
    email: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, message: str) -> str:
    return _b64(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest())


def make_token(secret: str, public_id: str, purpose: str = "subscriber") -> str:
    """The token for a subscriber's public id (never their address)."""
    if not secret:
        raise DigestError("DIGEST_SECRET_KEY is not set: generate one with `digest secret`")
    if not _PUBLIC_ID.match(public_id):
        raise DigestError(f"subscriber public id {public_id!r} is not a base64url word")
    return f"{public_id}.{_sign(secret, f'{purpose}-id|{public_id}')}"


def read_token(secret: str, token: str, purpose: str = "subscriber") -> TokenSubject:
    """Who the token was made for, or BadToken when it is not exactly as signed."""
    head, dot, signature = token.partition(".")
    if not dot or not head or not signature or not token.isascii():
        raise BadToken("this link is damaged or incomplete")
    if not secret:
        raise BadToken("this link is not valid")
    if _PUBLIC_ID.match(head) and hmac.compare_digest(
        signature, _sign(secret, f"{purpose}-id|{head}")
    ):
        return TokenSubject(public_id=head)
    email = _old_style_email(head)
    if email is not None and hmac.compare_digest(signature, _sign(secret, f"{purpose}|{email}")):
        return TokenSubject(email=email)
    raise BadToken("this link is not valid")


def _old_style_email(head: str) -> str | None:
    """The address in a token from before public ids, if `head` is its canonical base64."""
    try:
        email = _unb64(head).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return email if "@" in email and _b64(email.encode()) == head else None


def subscriber_url(public_url: str, secret: str, public_id: str, path: str = "unsubscribe") -> str:
    """An absolute link under DIGEST_PUBLIC_URL carrying the subscriber's token."""
    query = urlencode({"token": make_token(secret, public_id)})
    return f"{public_url.rstrip('/')}/{path}?{query}"
