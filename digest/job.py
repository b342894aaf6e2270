"""The daily job: build one edition, then render and send it to every subscriber.

This is the only module that strings the stages together:
collect -> group -> render -> deliver.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from digest.collect import collect
from digest.config import SAMPLE_FEEDS_DIR, Settings
from digest.deliver import build_message, send_messages
from digest.group import GroupOptions, group
from digest.models import DeliveryResult, Edition, Subscriber, SubscriberStatus
from digest.personalise import personalise
from digest.render import Renderer
from digest.store import Store

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What one run did, for the operator and the exit status."""

    edition_id: str
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    elapsed: float = 0.0
    failures: list[DeliveryResult] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.sent / self.elapsed if self.elapsed else 0.0
        return (
            f"edition {self.edition_id}: sent {self.sent}, failed {self.failed}, "
            f"skipped {self.skipped} in {self.elapsed:.1f}s ({rate:.1f} messages/s)"
        )


def sample_sources() -> list[str]:
    """The bundled offline sample feeds, used when no feed is configured."""
    return sorted(str(p) for p in SAMPLE_FEEDS_DIR.iterdir() if p.suffix == ".xml")


def resolve_sources(
    settings: Settings, store: Store, override: list[str] | None = None
) -> list[str]:
    """Feeds from --feeds, else DIGEST_FEEDS plus `digest feeds add`, else the samples."""
    if override:
        return list(dict.fromkeys(override))
    configured = list(dict.fromkeys([*settings.feeds, *store.feed_urls()]))
    if configured:
        return configured
    log.info("no feeds configured (DIGEST_FEEDS or `digest feeds add`): using the bundled samples")
    return sample_sources()


def edition_window(
    settings: Settings, now: datetime | None, since: datetime | None
) -> tuple[datetime, datetime]:
    end = (now or datetime.now(UTC)).astimezone(UTC)
    start = since.astimezone(UTC) if since else end - timedelta(hours=settings.window_hours)
    return start, end


def edition_id(settings: Settings, end: datetime) -> str:
    day = end.astimezone(ZoneInfo(settings.timezone)).date().isoformat()
    return f"{settings.list_id}/{day}"


def build_edition(
    settings: Settings,
    store: Store,
    *,
    now: datetime | None = None,
    since: datetime | None = None,
    feeds: list[str] | None = None,
) -> Edition:
    """Collect and group the window's articles into one edition (nothing is sent)."""
    start, end = edition_window(settings, now, since)
    sources = resolve_sources(settings, store, feeds)
    collection = collect(sources, start, end, store, settings)
    themes = group(collection.articles, GroupOptions.from_settings(settings))
    log.info(
        "collected %d articles from %d feeds (%d failed, %d dead) into %d themes",
        len(collection.articles),
        len(collection.feeds),
        sum(not f.ok for f in collection.feeds),
        sum(f.dead for f in collection.feeds),
        len(themes),
    )
    return Edition(
        id=edition_id(settings, end),
        generated_at=datetime.now(UTC),
        window_start=start,
        window_end=end,
        themes=themes,
        feeds=collection.feeds,
    )


# Personalisation: each subscriber's own view of the edition, before rendering.


def quiet_edition(edition: Edition) -> Edition:
    """The edition with nothing in it: rendered, it is the short "quiet day" note."""
    return edition.model_copy(update={"themes": []})


def personal_edition(
    edition: Edition, subscriber: Subscriber, settings: Settings
) -> Edition | None:
    """What this subscriber should receive today, or None to skip them (the reason is logged)."""
    mine = personalise(edition, subscriber)
    if mine is not None:
        return mine
    if any(t.shown for t in edition.themes):
        reason = "their topics leave nothing to read"
    else:
        reason = "the edition is empty"
    if settings.quiet_day == "note":
        log.info("sending %s the quiet-day note: %s today", subscriber.email, reason)
        return quiet_edition(edition)
    log.info("skipping %s: %s today (DIGEST_QUIET_DAY=skip)", subscriber.email, reason)
    return None


def send_edition(edition: Edition, settings: Settings, store: Store) -> RunReport:
    """Render and send the edition to every active subscriber."""
    return asyncio.run(_send_edition(edition, settings, store))


async def _send_edition(edition: Edition, settings: Settings, store: Store) -> RunReport:
    began = time.perf_counter()
    report = RunReport(edition_id=edition.id)
    renderer = Renderer(settings)

    def messages():
        for subscriber in store.iter_subscribers(SubscriberStatus.active):
            view = personal_edition(edition, subscriber, settings)
            if view is None:
                report.skipped += 1
                continue
            rendered = renderer.render(view, subscriber)
            yield subscriber, build_message(rendered, subscriber, settings)

    async for result in send_messages(messages(), settings):
        if result.ok:
            report.sent += 1
        else:
            report.failed += 1
            report.failures.append(result)
            log.warning("not delivered to %s: %s", result.email, result.error)
    report.elapsed = time.perf_counter() - began
    return report
