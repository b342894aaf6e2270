"""Deliver: rendered digests into messages, messages over SMTP.

`message` builds each distinct rendering once and fills it per subscriber;
`dkim` signs the final bytes; `sender` sends them over a pool of reused
connections with a pace limit and retries; `transport` connects and runs one
message's SMTP transaction; `views` renders each distinct view of an edition
once; `run` sends an edition to its audience, each delivery recorded in the
ledger (`digest.db.ledger`).
"""

from __future__ import annotations

from digest.config import Settings
from digest.deliver.message import (
    Composer,
    MessageTemplate,
    needs_smtputf8,
    new_message_id,
    standin,
)
from digest.deliver.sender import Outgoing, Sender, Verdict, classify
from digest.deliver.transport import connect
from digest.errors import SMTPUnavailable
from digest.models import RenderedDigest, Subscriber

__all__ = [
    "Composer",
    "MessageTemplate",
    "Outgoing",
    "SMTPUnavailable",
    "Sender",
    "Verdict",
    "build_message",
    "classify",
    "connect",
    "needs_smtputf8",
    "new_message_id",
    "standin",
]


def build_message(rendered: RenderedDigest, subscriber: Subscriber, settings: Settings) -> bytes:
    """One message's final bytes, as sent; for previews (no secret key needed)."""
    composer = Composer(settings, require_secret=False)
    return composer.message(composer.template(rendered), subscriber, new_message_id(settings))
