"""Deliver: wrap rendered digests in MIME messages and send them over SMTP.

One connection is opened for the run and reused for every message.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from digest.config import Settings
from digest.models import DeliveryResult, DigestError, RenderedDigest, Subscriber

log = logging.getLogger(__name__)


class SMTPUnavailable(DigestError):
    """The SMTP server could not be reached or refused the login."""


def build_message(
    rendered: RenderedDigest, subscriber: Subscriber, settings: Settings
) -> EmailMessage:
    """A multipart/alternative message (text first, HTML second), or text-only."""
    message = EmailMessage()
    message["From"] = Address(settings.from_name, addr_spec=settings.from_address)
    message["To"] = Address(subscriber.name, addr_spec=subscriber.email)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=settings.from_address.rpartition("@")[2])
    message.set_content(rendered.text, subtype="plain", cte="quoted-printable")
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return message


async def send_messages(
    messages: Iterable[tuple[Subscriber, EmailMessage]], settings: Settings
) -> AsyncIterator[DeliveryResult]:
    """Send each message over one reused connection, yielding a result per subscriber."""
    client = _client(settings)
    try:
        await client.connect()
        if settings.smtp_username:
            await client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise SMTPUnavailable(
            f"SMTP login as {settings.smtp_username!r} refused ({exc.code}); "
            "check DIGEST_SMTP_USERNAME and DIGEST_SMTP_PASSWORD"
        ) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise SMTPUnavailable(
            f"cannot reach the SMTP server {settings.smtp_host}:{settings.effective_smtp_port}: "
            f"{exc}; check DIGEST_SMTP_HOST, DIGEST_SMTP_PORT and DIGEST_SMTP_SECURITY"
        ) from None
    try:
        for subscriber, message in messages:
            yield await _send_one(client, subscriber, message)
    finally:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()


async def _send_one(
    client: aiosmtplib.SMTP, subscriber: Subscriber, message: EmailMessage
) -> DeliveryResult:
    message_id = message["Message-ID"]
    try:
        errors, _ = await client.send_message(message)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refusal = exc.recipients[0]
        return DeliveryResult(
            email=subscriber.email,
            ok=False,
            error=f"{refusal.code} {refusal.message}",
            permanent=refusal.code >= 500,
        )
    except aiosmtplib.SMTPResponseException as exc:
        return DeliveryResult(
            email=subscriber.email,
            ok=False,
            error=f"{exc.code} {exc.message}",
            permanent=exc.code >= 500,
        )
    except aiosmtplib.SMTPException as exc:
        return DeliveryResult(email=subscriber.email, ok=False, error=str(exc))
    if errors:
        code, text = next(iter(errors.values()))
        return DeliveryResult(email=subscriber.email, ok=False, error=f"{code} {text}")
    return DeliveryResult(email=subscriber.email, ok=True, message_id=message_id)


def _client(settings: Settings) -> aiosmtplib.SMTP:
    tls = settings.smtp_security == "tls"
    return aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.effective_smtp_port,
        use_tls=tls,
        start_tls=settings.smtp_security == "starttls",
        timeout=settings.smtp_timeout,
        tls_context=ssl.create_default_context() if settings.smtp_security != "none" else None,
    )
