"""Operator alerts: the person running the digest hears about a bad morning.

After a failed or partial run, when a feed turns dead, and when one run bounces
DIGEST_ALERT_BOUNCES addresses or more, one short plain-text email goes to
DIGEST_ALERT_TO over the same SMTP settings as the digest, at most one per kind
per day, naming what broke and the command that shows more. Every alert is also
a warning in the log, and the job records it in the run's report (`digest runs`),
so an operator without DIGEST_ALERT_TO sees the same facts.

Alerts never carry subscribers' addresses or secrets, and failing to send one
never fails the run: the digest matters more than the note about it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from enum import StrEnum
from typing import Protocol

import aiosmtplib

from digest.config import Settings
from digest.deliver import connect
from digest.errors import SMTPUnavailable

log = logging.getLogger(__name__)


class AlertKind(StrEnum):
    """What broke; each kind is emailed at most once a day."""

    run_failed = "run-failed"  # a failed, partial or missed morning
    feed_dead = "feed-dead"
    bounces = "bounces"


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    summary: str  # one line: the subject, the log line, the `digest runs` note
    details: tuple[str, ...] = ()
    more: str = "digest runs"  # the command that shows more

    def body(self) -> str:
        lines = [self.summary, "", *self.details]
        return "\n".join([*lines, "", f"More: run `{self.more}` on the digest host.", ""])


class AlertClaims(Protocol):
    """Where "already alerted today" is remembered, shared by every worker."""

    def claim_alert(self, kind: str, day: date) -> bool:
        """True for the first claim of `kind` on `day`, False after that."""
        ...

    def release_alert(self, kind: str, day: date) -> None:
        """Give a claim back (the email could not be sent): a later alert may try again."""
        ...


def run_failed(edition_id: str, status: str, reason: str, more: str = "digest runs") -> Alert:
    return Alert(
        AlertKind.run_failed, f"digest: the run for {edition_id} {status}: {reason}", (), more
    )


def feeds_dead(dead: list[tuple[str, int, str]]) -> Alert:
    """Feeds that just reached DIGEST_FEED_DEAD_AFTER failed runs: (url, failures, last error)."""
    noun = "feed has" if len(dead) == 1 else f"{len(dead)} feeds have"
    return Alert(
        AlertKind.feed_dead,
        f"digest: {noun} failed too many runs in a row and {'is' if len(dead) == 1 else 'are'} "
        "now dead",
        tuple(f"{url}: {failures} failed runs; last: {error}" for url, failures, error in dead),
        "digest feeds list",
    )


def many_bounces(edition_id: str, bounced: int, threshold: int) -> Alert:
    return Alert(
        AlertKind.bounces,
        f"digest: {bounced} addresses bounced in the run for {edition_id} "
        f"(DIGEST_ALERT_BOUNCES={threshold})",
        ("A relay refusing many addresses at once may be refusing the sender, not them.",),
        "digest subscribers list --status bounced",
    )


def raise_alert(alert: Alert, settings: Settings, claims: AlertClaims, now: datetime) -> str:
    """Log the alert and email it if due; returns the note kept in the run's report."""
    log.warning("alert: %s", alert.summary)
    for line in alert.details:
        log.warning("alert: %s", line)
    if not settings.alert_to:
        return f"{alert.summary} (logged; set DIGEST_ALERT_TO to be emailed)"
    day = now.astimezone(UTC).date()
    if not claims.claim_alert(alert.kind, day):
        log.info("alert %s already emailed today; not sending another", alert.kind)
        return f"{alert.summary} (an alert of this kind was already emailed today)"
    try:
        asyncio.run(_send(alert, settings, now))
    # SMTPUnavailable: a settings mismatch (no login offered, TLS against plain text).
    except (aiosmtplib.SMTPException, SMTPUnavailable, OSError, TimeoutError) as exc:
        claims.release_alert(alert.kind, day)
        log.warning("could not email the alert to DIGEST_ALERT_TO: %s", exc or type(exc).__name__)
        return f"{alert.summary} (emailing it failed: {exc or type(exc).__name__})"
    return f"{alert.summary} (emailed to DIGEST_ALERT_TO)"


def alert_message(alert: Alert, settings: Settings, now: datetime) -> EmailMessage:
    """The alert as a short plain-text message, marked as sent by a machine."""
    # Never folded (RFC 5322 allows 998 characters): Python 3.11's folder can start a
    # folded Subject with a stray space.
    message = EmailMessage(policy=SMTP.clone(max_line_length=998))
    message["From"] = Address(settings.from_name, addr_spec=settings.from_address)
    message["To"] = Address(addr_spec=settings.alert_to)
    message["Subject"] = alert.summary
    message["Date"] = format_datetime(now.astimezone(UTC))
    message["Message-ID"] = make_msgid("alert", domain=settings.sender_domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(alert.body())
    return message


async def _send(alert: Alert, settings: Settings, now: datetime) -> None:
    client = await connect(settings)
    try:
        message = alert_message(alert, settings, now)
        # Sent as built: aiosmtplib's send_message would re-fold it with its own policy.
        await client.sendmail(settings.from_address, [settings.alert_to], message.as_bytes())
    finally:
        try:
            await client.quit()
        except aiosmtplib.SMTPException:
            client.close()
