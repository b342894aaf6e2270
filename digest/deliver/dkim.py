"""DKIM signing at full speed: dkimpy's canonicalisation, the `cryptography` package's keys.

dkimpy signs in pure Python (about a hundred 80 KB messages a second). Here its own
relaxed/relaxed rules (`dkim.canonicalization.Relaxed`) still canonicalise, but:
each key is loaded once per run; a rendering's body is canonicalised once, and
its hash is carried up to the first per-subscriber value (`BodyHash`), so a copy
costs only the hashing of what follows plus one signature made by OpenSSL.

The signed header list is explicit because dkimpy's default omits
List-Unsubscribe-Post, and RFC 8058 asks that both List-Unsubscribe headers
be covered so one-click unsubscribe cannot be forged onto a message.
An Ed25519 key (RFC 8463) may sign as well; the RSA signature is put on top,
since every receiver checks RSA and not all check Ed25519.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils
from dkim.canonicalization import (
    Relaxed,
    compress_whitespace,
    correct_empty_body,
    strip_trailing_lines,
    strip_trailing_whitespace,
)

from digest.config import Settings
from digest.models import DigestError

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",
    b"auto-submitted",
)
CRLF = b"\r\n"
_SHA256 = utils.Prehashed(hashes.SHA256())
_T, _BH = b"\x00t\x00", b"\x00bh\x00"  # stand-ins in a signature header made once per key


def canonical_body(body: bytes) -> bytes:
    """dkimpy's relaxed body canonicalisation (RFC 6376 3.4.4)."""
    return Relaxed.canonicalize_body(body)


def _canonical_lines(piece: bytes) -> bytes:
    """Relaxed canonicalisation of whole lines that are not the end of the body."""
    return compress_whitespace(strip_trailing_whitespace(piece))


class BodyHash:
    """The relaxed body hash of one rendering, for any subscriber's values in its slots.

    The static pieces are canonicalised once. That is exact when every piece is
    whole lines (each slot starts at a line start and its value ends in CRLF, as
    the message builder makes them), since relaxed canonicalisation then works
    line by line; anything else falls back to canonicalising the whole body.
    """

    def __init__(self, pieces: Sequence[bytes | str]) -> None:
        last = pieces[-1] if pieces else b""
        self.exact = (
            isinstance(last, bytes)
            and last.strip(CRLF) != b""
            and all(p.endswith(CRLF) for p in pieces[:-1] if isinstance(p, bytes) and p)
        )
        self.pieces = list(pieces)
        if not self.exact:
            return
        canonical: list[bytes | str] = [
            _canonical_lines(p) if isinstance(p, bytes) else p for p in pieces[:-1]
        ]
        canonical.append(correct_empty_body(strip_trailing_lines(_canonical_lines(last))))
        first_slot = next((i for i, p in enumerate(canonical) if isinstance(p, str)), None)
        split = len(canonical) if first_slot is None else first_slot
        self._prefix = hashlib.sha256(b"".join(canonical[:split]))  # type: ignore[arg-type]
        self._rest = canonical[split:]

    def digest(self, values: dict[str, bytes]) -> bytes:
        """The bh= value (base64) for the body filled with these slot values."""
        if not self.exact:
            body = b"".join(values[p] if isinstance(p, str) else p for p in self.pieces)
            return base64.b64encode(hashlib.sha256(canonical_body(body)).digest())
        hasher = self._prefix.copy()
        for piece in self._rest:
            if isinstance(piece, str):
                value = values[piece]
                if value and not value.endswith(CRLF):  # never from the builder; stay exact
                    return self._whole(values)
                hasher.update(_canonical_lines(value))
            else:
                hasher.update(piece)
        return base64.b64encode(hasher.digest())

    def _whole(self, values: dict[str, bytes]) -> bytes:
        self.exact = False
        return self.digest(values)


@dataclass(frozen=True)
class Key:
    """One private key and the selector its public half is published under."""

    algorithm: bytes  # b"rsa-sha256" or b"ed25519-sha256"
    selector: bytes
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    def sign(self, header_hash: hashlib._Hash) -> bytes:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(header_hash.digest(), padding.PKCS1v15(), _SHA256)
        return self.private.sign(header_hash.digest())  # RFC 8463: Ed25519 over the SHA-256

    def dns_record(self) -> str:
        """The TXT record to publish at <selector>._domainkey.<domain>."""
        public = self.private.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def load_key(path: Path, setting: str, selector: str, kind: str) -> Key:
    """Read a PEM key (or dkimpy's base64 Ed25519 seed); errors name the setting, never the key."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DigestError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    private: object = None
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if kind == "ed25519":
            try:
                seed = base64.b64decode(data.strip(), validate=True)
                private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
            except (binascii.Error, ValueError):
                private = None
    if kind == "rsa" and isinstance(private, rsa.RSAPrivateKey) and private.key_size >= 1024:
        return Key(b"rsa-sha256", selector.encode(), private)
    if kind == "ed25519" and isinstance(private, ed25519.Ed25519PrivateKey):
        return Key(b"ed25519-sha256", selector.encode(), private)
    make = "openssl genrsa 2048" if kind == "rsa" else "openssl genpkey -algorithm ed25519"
    kind_name = "an RSA private key of at least 1024 bits" if kind == "rsa" else "an Ed25519 key"
    raise DigestError(
        f"{setting}: {path} is not {kind_name} in PEM form without a passphrase; "
        f"make one with `{make}`"
    )


class Signer:
    """Signs with the run's keys, loaded once; RSA's signature ends up topmost."""

    def __init__(self, keys: Sequence[Key], domain: str) -> None:
        self.keys = tuple(sorted(keys, key=lambda k: k.algorithm == b"rsa-sha256"))
        self.domain = domain.encode()
        names = [b":".join(SIGNED_HEADERS[i : i + 4]) for i in range(0, len(SIGNED_HEADERS), 4)]
        self._h = b"h=" + (b":" + CRLF + b"  ").join(names) + b";"
        self._headers = [self._signature_header(key) for key in self.keys]
        self._canonical: dict[tuple[bytes, bytes], bytes] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer | None:
        keys = []
        if settings.dkim_key_file is not None:
            keys.append(
                load_key(settings.dkim_key_file, "DIGEST_DKIM_KEY_FILE",
                         settings.dkim_selector, "rsa")
            )  # fmt: skip
        if settings.dkim_ed25519_key_file is not None:
            keys.append(
                load_key(settings.dkim_ed25519_key_file, "DIGEST_DKIM_ED25519_KEY_FILE",
                         settings.dkim_ed25519_selector, "ed25519")
            )  # fmt: skip
        if not keys:
            return None
        return cls(keys, settings.dkim_domain or settings.sender_domain)

    def sign(self, message: bytes, body_hash: bytes | None = None) -> bytes:
        """The message with its DKIM-Signature header(s) prepended; the rest is unchanged.

        `body_hash` is the bh= value when the caller has it (see BodyHash).
        """
        end = message.find(CRLF + CRLF)
        head = message[: end + 2] if end >= 0 else message
        if body_hash is None:
            body = message[end + 4 :] if end >= 0 else b""
            body_hash = base64.b64encode(hashlib.sha256(canonical_body(body)).digest())
        signed = self._signed_header_data(head)
        stamp = str(int(time.time())).encode()
        out = []
        for key, (unsigned, canonical) in zip(self.keys, self._headers, strict=True):
            hasher = hashlib.sha256(signed)
            hasher.update(canonical.replace(_T, stamp).replace(_BH, body_hash))
            header = unsigned.replace(_T, stamp).replace(_BH, body_hash)
            out.append(header + _fold_base64(key.sign(hasher)) + CRLF)
        return b"".join(reversed(out)) + message

    def _signature_header(self, key: Key) -> tuple[bytes, bytes]:
        """A key's DKIM-Signature header up to b=, with stand-ins for t= and bh=, and its
        relaxed canonical form (the stand-ins and their values have no white space, so
        canonicalising once and filling in later is exact)."""
        unsigned = (
            b"DKIM-Signature: v=1; a=" + key.algorithm + b"; c=relaxed/relaxed; d="
            + self.domain + b"; s=" + key.selector + b";" + CRLF
            + b" t=" + _T + b"; " + self._h + CRLF
            + b" bh=" + _BH + b";" + CRLF
            + b" b="
        )  # fmt: skip
        name, value = Relaxed.canonicalize_headers([(b"DKIM-Signature", unsigned[15:])])[0]
        return unsigned, name + b":" + value.rstrip()

    def _signed_header_data(self, head: bytes) -> bytes:
        """The relaxed canonical form of the signed headers, in h= order (the last instance
        of a repeated header, as dkimpy's verifier picks it). A rendering's headers are
        the same for every copy, so their canonical forms are remembered."""
        fields: dict[bytes, bytes] = {}
        name = b""
        for line in head.split(CRLF):
            if line[:1] in (b" ", b"\t"):
                fields[name] += CRLF + line
            elif line:
                raw_name, _, value = line.partition(b":")
                name = raw_name.lower().rstrip()
                fields[name] = value
        cache = self._canonical
        if len(cache) > 4096:
            cache.clear()
        parts = []
        for name in SIGNED_HEADERS:
            value = fields.get(name)
            if value is None:
                continue
            canonical = cache.get((name, value))
            if canonical is None:
                canonical = b":".join(Relaxed.canonicalize_headers([(name, value)])[0])
                cache[name, value] = canonical
            parts.append(canonical)
        return b"".join(parts)


def _fold_base64(signature: bytes) -> bytes:
    encoded = base64.b64encode(signature)
    return (CRLF + b"  ").join(encoded[i : i + 72] for i in range(0, len(encoded), 72))
