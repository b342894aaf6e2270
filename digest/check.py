"""`digest check`: is everything the morning run needs in place?

Each check reaches the real thing (the database, the SMTP server up to login,
the grouping model, every feed) without sending anything, and says what to fix
when it fails.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib

from digest.collect import check as check_feed_list
from digest.config import ENV_FILE, Settings, unknown_settings
from digest.db import Database
from digest.db.feeds import FeedRepository
from digest.deliver import connect
from digest.errors import ConfigError, DigestError, SMTPUnavailable


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"{mark} {self.name}: {self.detail}"
        return f"{text} -> {self.fix}" if self.fix and not self.ok else text


def check_setting_names(env_file: Path = Path(ENV_FILE)) -> list[Check]:
    """A FAIL per DIGEST_* name that is no setting: a misspelt one silently keeps its default."""
    return [
        Check("settings", False, problem, "rename or remove it")
        for problem in unknown_settings(os.environ, env_file)
    ]


def check_secret(settings: Settings) -> Check:
    try:
        settings.require_secret_key()
    except ConfigError as exc:
        return Check("secret key", False, str(exc))
    return Check("secret key", True, "DIGEST_SECRET_KEY is set")


def check_embedding_model(settings: Settings) -> Check:
    """Load grouping's model as a run would: a corrupt DIGEST_EMBEDDING_MODEL fails here."""
    from digest.group.embed import describe  # numpy and the model: loaded only for this check

    try:
        return Check("embedding model", True, describe(settings.embedding_model))
    except DigestError as exc:
        return Check("embedding model", False, str(exc))


def check_database(settings: Settings) -> tuple[Check, Database | None]:
    try:
        db = Database(settings.database_url)
        current, _ = db.revisions()
    except DigestError as exc:
        return Check("database", False, str(exc), "fix DIGEST_DATABASE_URL"), None
    return Check("database", True, f"{db.describe()} at schema revision {current}"), db


def check_smtp(settings: Settings) -> Check:
    """Connect, EHLO, STARTTLS and log in as the run would, then QUIT without sending."""
    target = f"{settings.smtp_host}:{settings.effective_smtp_port} ({settings.smtp_security})"
    try:
        detail = asyncio.run(_smtp_handshake(settings))
    except aiosmtplib.SMTPAuthenticationError as exc:
        return Check(
            "smtp",
            False,
            f"{target}: login as {settings.smtp_username!r} refused ({exc.code})",
            "check DIGEST_SMTP_USERNAME and DIGEST_SMTP_PASSWORD",
        )
    except (aiosmtplib.SMTPException, SMTPUnavailable, OSError, TimeoutError) as exc:
        return Check(
            "smtp",
            False,
            f"{target}: {exc or type(exc).__name__}",
            "check DIGEST_SMTP_HOST, DIGEST_SMTP_PORT and DIGEST_SMTP_SECURITY",
        )
    return Check("smtp", True, f"{target}: {detail}")


async def _smtp_handshake(settings: Settings) -> str:
    client = await connect(settings)
    try:
        steps = ["EHLO"]
        if settings.smtp_security == "starttls":
            steps.append("STARTTLS")
        if settings.smtp_username:
            steps.append("login")
        return ", ".join(steps) + " accepted"
    finally:
        try:
            await client.quit()
        except aiosmtplib.SMTPException:
            client.close()


def check_feeds(settings: Settings, feeds: FeedRepository, sources: list[str]) -> list[Check]:
    """Fetch and parse every feed afresh, as `digest feeds check` does."""
    return [
        Check(
            f"feed {report.url}",
            report.ok,
            f"{report.articles} entries, {report.seconds:.1f}s"
            if report.ok
            else report.error or "failed",
            "fix or remove it with `digest feeds remove URL`",
        )
        for report in check_feed_list(sources, feeds, settings)
    ]
