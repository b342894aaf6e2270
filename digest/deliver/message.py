"""Messages: the headers bulk senders need, built once per rendering, filled per subscriber.

Building and encoding a MIME message with the `email` package costs more than
sending it, so a `MessageTemplate` is built once per distinct rendering (format,
time zone, topics) from a view rendered for a stand-in subscriber. It keeps the
final bytes cut where a subscriber's own values go: To, Date, Message-ID and
List-Unsubscribe in the headers; name, address and signed link token in the
bodies. `Composer.message` joins the pieces for one subscriber; those bytes are
what DKIM signs and what goes on the wire, unchanged.
"""

from __future__ import annotations

import binascii
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import Header
from email.headerregistry import Address
from email.policy import SMTP
from email.utils import format_datetime
from functools import cached_property

from markupsafe import escape

from digest.config import Settings
from digest.deliver.dkim import BodyHash, Signer
from digest.models import RenderedDigest, Subscriber
from digest.tokens import make_token

# A view is rendered for this stand-in; its values are then replaced by each
# subscriber's own. Letters, digits and @.- only, so HTML escaping leaves them as they are.
STANDIN_MARK = "7f3a9c"
STANDIN_EMAIL = f"standin-{STANDIN_MARK}@standin.invalid"
STANDIN_NAME = f"Standinname{STANDIN_MARK}"
STANDIN_ID = f"standin{STANDIN_MARK}"

CRLF = b"\r\n"
_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")
# Bytes quoted-printable may carry as they are: printable ASCII except '='.
_QP_LITERAL = frozenset(range(33, 127)) - {ord("=")}


def one_line(value: str) -> str:
    """A header value from data can never start a new header line."""
    return " ".join(_BREAKS.sub(" ", value).split())


def standin(subscriber: Subscriber) -> Subscriber:
    """The subscriber's preferences under the stand-in address, and name if they have one
    (templates may treat a missing name differently: views are keyed on having one)."""
    name = STANDIN_NAME if subscriber.name else ""
    return subscriber.model_copy(
        update={"email": STANDIN_EMAIL, "name": name, "public_id": STANDIN_ID}
    )


def new_message_id(settings: Settings) -> str:
    return f"<{uuid.uuid4().hex}@{settings.sender_domain}>"


def needs_smtputf8(address: str) -> bool:
    return not address.isascii()


@dataclass
class MessageTemplate:
    """A message's final bytes, with slots (str keys) where per-subscriber bytes go.

    `pieces[body_start:]` is the body (after the blank line); `body_hash`, set when
    the run signs, is its DKIM body hash for any subscriber's values.
    """

    pieces: tuple[bytes | str, ...]
    body_start: int = 0
    body_hash: BodyHash | None = field(default=None, compare=False)

    @cached_property
    def body_slots(self) -> frozenset[str]:
        return frozenset(p for p in self.pieces if isinstance(p, str) and p.startswith("b:"))

    def fill(self, values: dict[str, bytes]) -> bytes:
        return b"".join(values[p] if isinstance(p, str) else p for p in self.pieces)


class Composer:
    """Turns renderings into templates and templates into each subscriber's message."""

    def __init__(self, settings: Settings, *, require_secret: bool = True) -> None:
        self.settings = settings
        self.secret = settings.secret_key.get_secret_value()
        if require_secret:
            settings.require_secret_key()
        self.signer = Signer.from_settings(settings)
        self._standin_token = make_token(self.secret, STANDIN_ID) if self.secret else None
        base = settings.links_url
        self._unsubscribe_prefix = f"{base}/unsubscribe?token="
        mailto = settings.list_unsubscribe_mailto
        self._mailto = f",{CRLF.decode()} <mailto:{mailto}?subject=unsubscribe>" if mailto else ""
        self._date = ("", 0)
        self._from = address_header("From", settings.from_name, settings.from_address)
        self._list_id = _list_id(settings)

    def template(self, rendered: RenderedDigest) -> MessageTemplate:
        """Build the MIME message once; slots stand where the stand-in's values were."""
        s = self.settings
        domain = s.sender_domain
        feedback_id = s.feedback_id or f"{s.list_id}:digest:{domain}"
        head = [self._from,
                "h:to",
                _unstructured("Subject", rendered.subject),
                "h:date",
                "h:message_id",
                b"MIME-Version: 1.0" + CRLF,
                self._list_id,
                "h:list_unsubscribe",
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF,
                _unstructured("Feedback-ID", feedback_id),
                b"Auto-Submitted: auto-generated" + CRLF]  # fmt: skip
        text = self._body(rendered.text, html=False)
        if rendered.html is None:
            ends_cleanly = isinstance(text[-1], bytes) and text[-1].endswith(CRLF)
            head += [*_part_headers("plain"), CRLF]
            body = [*text, b"" if ends_cleanly else CRLF]
        else:
            boundary = f"=_digest_{uuid.uuid4().hex}".encode()
            html = self._body(rendered.html, html=True)
            head += [
                b'Content-Type: multipart/alternative; boundary="' + boundary + b'"' + CRLF,
                CRLF,
            ]
            body = [
                b"--" + boundary + CRLF,
                *_part_headers("plain"),
                CRLF,
                *text,
                CRLF + b"--" + boundary + CRLF,
                *_part_headers("html"),
                CRLF,
                *html,
                CRLF + b"--" + boundary + b"--" + CRLF,
            ]
        head, body = _merge(head), _merge(body)
        template = MessageTemplate(tuple(head + body), body_start=len(head))
        if self.signer:
            template.body_hash = BodyHash(body)
        return template

    def message(self, template: MessageTemplate, subscriber: Subscriber, message_id: str) -> bytes:
        """One subscriber's message: the template filled in, then DKIM-signed if configured."""
        address = subscriber.email
        name = one_line(subscriber.name)
        token = make_token(self.secret, subscriber.public_id) if self.secret else "preview"
        values = {
            "h:to": address_header("To", name, address),
            "h:date": b"Date: " + self._now().encode() + CRLF,
            "h:message_id": b"Message-ID: " + message_id.encode() + CRLF,
            "h:list_unsubscribe": (
                f"List-Unsubscribe: <{self._unsubscribe_prefix}{token}>{self._mailto}"
            ).encode()
            + CRLF,
        }
        body_values = {
            "b:token": lambda: token,
            "b:email": lambda: address,
            "b:name": lambda: name,
            "b:html:email": lambda: str(escape(address)),
            "b:html:name": lambda: str(escape(name)),
        }
        for slot in template.body_slots:
            values[slot] = _qp_inline(body_values[slot]())
        data = template.fill(values)
        if not self.signer:
            return data
        body_hash = template.body_hash.digest(values) if template.body_hash else None
        return self.signer.sign(data, body_hash)

    def has_leftovers(self, rendered: RenderedDigest) -> bool:
        """Whether the stand-in's values appear other than as they are (e.g. upper-cased,
        re-encoded), which filling in per subscriber would get wrong."""
        text = f"{rendered.text}\n{rendered.html or ''}"
        for value in (self._standin_token, STANDIN_EMAIL, STANDIN_NAME):
            if value:
                text = text.replace(value, "")
        signature = self._standin_token.partition(".")[2] if self._standin_token else None
        return STANDIN_MARK in text.lower() or bool(signature and signature in text)

    def _body(self, text: str, *, html: bool) -> list[bytes | str]:
        """Quoted-printable body pieces, each stand-in value replaced by its slot."""
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        slots = {STANDIN_EMAIL: "b:html:email" if html else "b:email"}
        slots[STANDIN_NAME] = "b:html:name" if html else "b:name"
        if self._standin_token:
            slots[self._standin_token] = "b:token"
        pattern = re.compile("|".join(re.escape(k) for k in sorted(slots, key=len, reverse=True)))
        pieces: list[bytes | str] = []
        start = 0
        for match in pattern.finditer(text):
            pieces.append(_end_with_soft_break(_qp(text[start : match.start()])))
            pieces.append(slots[match.group()])
            start = match.end()
        pieces.append(_qp(text[start:]))
        return pieces

    def _now(self) -> str:
        """The Date header value, formatted once a second rather than once a message."""
        second = int(time.time())
        if self._date[1] != second:
            self._date = (format_datetime(datetime.fromtimestamp(second, UTC)), second)
        return self._date[0]


def address_header(field: str, name: str, address: str) -> bytes:
    """One address header (From, To, Reply-To) from an `email.headerregistry.Address`.

    The email package quotes the display name (so `Eve <eve@x>,` stays a name),
    but its folder in Python 3.11 drops those quotes when it has to fold, and it
    decodes encoded words inside a name into raw line breaks. So: encoded-word
    markers in names are broken up; the quoted form is written on one line, or
    folded only between the name and the <address>; and only a non-ASCII name in
    a message without SMTPUTF8 goes through the email package's encoder, whose
    output is read back to check it still names exactly this one address.
    """
    name = one_line(name).replace("=?", "= ?")
    local, _, domain = address.rpartition("@")
    entry = Address(name, local, domain)  # refuses CR/LF in any part
    if name and not name.isascii() and not needs_smtputf8(address):
        folded = SMTP.fold_binary(field, SMTP.header_factory(field, entry))
        if _names_only(field, folded, entry):
            return folded
        entry = Address("", local, domain)
    head, _, tail = str(entry).rpartition(" <")
    if not head or len(field) + len(head) + len(tail) + 4 <= 78:
        return f"{field}: {entry}".encode() + CRLF
    return f"{field}: {head}\r\n <{tail}".encode() + CRLF


def _names_only(field: str, folded: bytes, entry: Address) -> bool:
    """Whether a folded address header reads back as exactly `entry`, nothing more."""
    value = folded.decode("ascii").partition(":")[2].replace("\r\n", "")
    if "?q??=" in value or "?b??=" in value:
        return False
    try:
        addresses = SMTP.header_factory(field, value).addresses
    except (IndexError, ValueError, TypeError):  # the email package's parser, on odd input
        return False
    return len(addresses) == 1 and addresses[0].addr_spec == entry.addr_spec


def _unstructured(name: str, value: str) -> bytes:
    """An unstructured header (Subject, Feedback-ID) as one line or folded RFC 2047 words.

    `email.header.Header` never decodes encoded words found in the value: the
    policy's header factory would turn `=?utf-8?q?y=0D=0ABcc:...?=` into a real
    line break and a new header. Unlike that policy's folder in Python 3.11, it
    never writes an empty encoded word or a doubled space. ASCII text with no
    `=?` in it stays readable as it is.
    """
    value = one_line(value)
    charset = "us-ascii" if value.isascii() and "=?" not in value else "utf-8"
    return (
        f"{name}: ".encode()
        + Header(value, charset, header_name=name).encode(linesep="\r\n").encode("ascii")
        + CRLF
    )


def _list_id(settings: Settings) -> bytes:
    """List-Id: the sender's name as the list's description, then <list-id.domain>."""
    description = one_line(settings.from_name).replace("=?", "= ?")
    list_id = f"<{settings.list_id}.{settings.sender_domain}>"
    if not description:
        return f"List-Id: {list_id}".encode() + CRLF
    if description.isascii():
        phrase = str(Address(description, "x", "x.invalid")).rpartition(" <")[0]
    else:
        phrase = Header(description, "utf-8").encode(linesep="\r\n")
    separator = " " if len(phrase) + len(list_id) < 68 and "\n" not in phrase else "\r\n "
    return f"List-Id: {phrase}{separator}{list_id}".encode() + CRLF


def _part_headers(subtype: str) -> list[bytes]:
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"'.encode() + CRLF,
        b"Content-Transfer-Encoding: quoted-printable" + CRLF,
    ]


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends (C speed: binascii)."""
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", CRLF)


def _end_with_soft_break(encoded: bytes) -> bytes:
    """End mid-line text with a soft line break, so a slot starts at column 0.

    Keeps every line within quoted-printable's 76 characters and never splits an
    =XX escape.
    """
    cut_at = encoded.rfind(CRLF) + 2 if CRLF in encoded else 0
    last = encoded[cut_at:]
    if not last:
        return encoded
    lines = []
    while len(last) > 75:
        cut = 75
        if last[cut - 1 : cut] == b"=":
            cut -= 1
        elif last[cut - 2 : cut - 1] == b"=":
            cut -= 2
        lines.append(last[:cut] + b"=" + CRLF)
        last = last[cut:]
    lines.append(last + b"=" + CRLF)
    return encoded[:cut_at] + b"".join(lines)


def _qp_inline(value: str) -> bytes:
    """A one-line value as quoted-printable lines, each ending in a soft line break."""
    out = bytearray()
    width = 0
    for byte in value.encode("utf-8"):
        chunk = bytes((byte,)) if byte in _QP_LITERAL else b"=%02X" % byte
        if width + len(chunk) > 75:
            out += b"=" + CRLF
            width = 0
        out += chunk
        width += len(chunk)
    if out:
        out += b"=" + CRLF
    return bytes(out)


def _merge(pieces: list[bytes | str]) -> list[bytes | str]:
    """Join neighbouring byte pieces so filling is one short join."""
    merged: list[bytes | str] = []
    for piece in pieces:
        if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] = merged[-1] + piece
        else:
            merged.append(piece)
    return merged
