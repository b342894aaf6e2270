"""SMTP transport: connecting as DIGEST_SMTP_* say, and one message's transaction.

Kept apart from the pool (`sender`) so `digest check` connects exactly as a run
does, and so a settings mismatch (STARTTLS against implicit TLS and the reverse)
is named as such instead of "cannot reach the server".
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from functools import cache

import aiosmtplib

from digest.config import Settings
from digest.errors import SecurityMismatch, SMTPUnavailable


class MessageTooLarge(Exception):
    """One message is over DIGEST_MAX_MESSAGE_BYTES or the server's SIZE: it alone fails."""


class Unanswered(Exception):
    """The server sent no reply to the end of the message data within two waits."""


async def connect(settings: Settings) -> aiosmtplib.SMTP:
    """Connect, EHLO, STARTTLS or implicit TLS, and log in, as DIGEST_SMTP_* say."""
    s = settings
    client = aiosmtplib.SMTP(
        hostname=s.smtp_host,
        port=s.effective_smtp_port,
        use_tls=s.smtp_security == "tls",
        start_tls=s.smtp_security == "starttls",
        timeout=s.smtp_timeout,
        local_hostname=_local_hostname(),
        tls_context=ssl.create_default_context() if s.smtp_security != "none" else None,
    )
    try:
        await client.connect()
    except (aiosmtplib.SMTPException, OSError) as exc:
        mismatch = _security_mismatch(s, exc)
        if mismatch:
            raise SecurityMismatch(mismatch) from None
        raise
    if s.smtp_username:
        if client.is_ehlo_or_helo_needed:  # what the server offers now (after STARTTLS)
            await client.ehlo()
        if not client.supports_extension("auth"):
            client.close()
            raise SMTPUnavailable(_no_login(s))
        await client.login(s.smtp_username, s.smtp_password.get_secret_value())
    return client


def _no_login(settings: Settings) -> str:
    """The server was reached but offers no login: say which setting to change."""
    where = f"{settings.smtp_host}:{settings.effective_smtp_port}"
    advice = (
        "many servers offer it only after STARTTLS: use DIGEST_SMTP_SECURITY=starttls (or tls); "
        if settings.smtp_security == "none"
        else ""
    )
    return (
        f"the SMTP server {where} offers no login (AUTH) but DIGEST_SMTP_USERNAME is set; "
        f"{advice}leave DIGEST_SMTP_USERNAME empty if the server needs no login"
    )


def _security_mismatch(settings: Settings, exc: BaseException) -> str | None:
    """Say so when DIGEST_SMTP_SECURITY does not match what the server on that port speaks."""
    port = settings.effective_smtp_port
    text = str(exc)
    causes = [exc]
    while causes[-1].__cause__ is not None and len(causes) < 5:
        causes.append(causes[-1].__cause__)
    if settings.smtp_security == "starttls":
        if "STARTTLS extension not supported" in text:
            return (
                f"the server does not offer STARTTLS on port {port}; use "
                "DIGEST_SMTP_SECURITY=tls if it expects TLS from the first byte (usually port "
                "465), or DIGEST_SMTP_SECURITY=none on a trusted network"
            )
        if (isinstance(exc, aiosmtplib.SMTPConnectTimeoutError) and "ready message" in text) or (
            isinstance(exc, aiosmtplib.SMTPConnectError) and "Unexpected EOF" in text
        ):
            return (
                f"the server does not offer STARTTLS on port {port}: it sent no plain-text "
                "greeting, so it expects TLS from the first byte; use DIGEST_SMTP_SECURITY=tls"
            )
    if settings.smtp_security == "tls":
        for cause in causes:
            if isinstance(cause, ssl.SSLCertVerificationError):
                return None
            if isinstance(cause, ssl.SSLError) and any(
                mark in str(cause) for mark in ("WRONG_VERSION_NUMBER", "wrong version number",
                                                "record layer", "packet length too long")
            ):  # fmt: skip
                return (
                    f"the server on port {port} answers in plain text, not TLS; use "
                    "DIGEST_SMTP_SECURITY=starttls (usually port 587), or none"
                )
    return None


async def transaction(
    client: aiosmtplib.SMTP, settings: Settings, recipient: str, data: bytes, smtputf8: bool
) -> None:
    """One message to one recipient: aiosmtplib's sendmail steps (EHLO if needed, MAIL with
    SIZE=, RCPT, DATA, RSET after a refusal), with two changes.

    A message over DIGEST_MAX_MESSAGE_BYTES or the server's SIZE fails alone, before
    MAIL. DATA gets twice DIGEST_SMTP_TIMEOUT: a relay that answers late is waited
    for once more rather than sent the message again; if it still has not answered,
    it may have the message (`Unanswered`). That covers the wait for DATA's 354 too
    (aiosmtplib sends the data in the same step), so it errs on the side of one copy.
    """
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    limit = settings.max_message_bytes
    server_limit = int(client.esmtp_extensions.get("size") or 0)
    if 0 < server_limit < limit:
        limit = server_limit
    if len(data) > limit:
        source = "the server's SIZE" if limit == server_limit else "DIGEST_MAX_MESSAGE_BYTES"
        raise MessageTooLarge(
            f"message is {len(data):,} bytes, over {source} ({limit:,}); not sent "
            "(an oversized title or summary? check the feeds, or raise the limit)"
        )
    options = []
    encoding = "ascii"
    if smtputf8:
        if not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server")
        options, encoding = ["SMTPUTF8"], "utf-8"
    if client.supports_extension("size"):
        options.insert(0, f"SIZE={len(data)}")
    timeout = settings.smtp_timeout
    try:
        await client.mail(settings.from_address, options=options, encoding=encoding,
                          timeout=timeout)  # fmt: skip
        try:
            await client.rcpt(recipient, encoding=encoding, timeout=timeout)
        except aiosmtplib.SMTPRecipientRefused as exc:
            raise aiosmtplib.SMTPRecipientsRefused([exc]) from None
        try:
            await client.data(data, timeout=2 * timeout)
        except aiosmtplib.SMTPTimeoutError:
            raise Unanswered(
                f"no reply to the message data within 2 x DIGEST_SMTP_TIMEOUT "
                f"({2 * timeout:g} s): the server may have it"
            ) from None
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPException):
            await client.rset(timeout=timeout)  # the refusal is what matters
        raise


@cache
def _local_hostname() -> str:
    """The name given in EHLO, looked up once rather than per connection."""
    return socket.getfqdn()
