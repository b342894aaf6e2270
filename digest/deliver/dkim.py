"""DKIM signing (dkimpy) over each message's final bytes.

The signed header list is explicit because dkimpy's default omits
List-Unsubscribe-Post, and RFC 8058 asks that both List-Unsubscribe headers
be covered so one-click unsubscribe cannot be forged onto a message.
"""

from __future__ import annotations

import dkim

from digest.config import Settings
from digest.models import DigestError

SIGNED_HEADERS = [
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"MIME-Version",
    b"Content-Type",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"Feedback-ID",
    b"Auto-Submitted",
]

_PROBE = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: probe\r\n\r\nprobe\r\n"


class Signer:
    """Signs with one key; built once per run, after the key has been tried."""

    def __init__(self, key: bytes, selector: str, domain: str) -> None:
        self._key = key
        self.selector = selector.encode()
        self.domain = domain.encode()
        try:
            self.sign(_PROBE)
        except (dkim.DKIMException, ValueError, IndexError) as exc:
            # The message names the file, never the key material.
            raise DigestError(
                f"DIGEST_DKIM_KEY_FILE: the key cannot sign ({type(exc).__name__}); "
                "use an RSA private key in PEM form (openssl genrsa 2048)"
            ) from None

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer | None:
        if settings.dkim_key_file is None:
            return None
        try:
            key = settings.dkim_key_file.read_bytes()
        except OSError as exc:
            raise DigestError(
                f"DIGEST_DKIM_KEY_FILE: cannot read {settings.dkim_key_file}: {exc.strerror}"
            ) from None
        return cls(key, settings.dkim_selector, settings.dkim_domain or settings.sender_domain)

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header prepended; the rest is unchanged."""
        signature = dkim.sign(
            message,
            self.selector,
            self.domain,
            self._key,
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=b"rsa-sha256",
            include_headers=SIGNED_HEADERS,
        )
        return signature + message
