"""The daily job: build one edition, then send it to every subscriber who is due.

This is the only module that strings the stages together
(collect -> group -> render -> deliver), and `run_edition` is its one entry
point for a send: `digest run`, every `--shard` worker and `digest schedule`
call it. `build_edition` is the same sequence without sending, for previews.

The edition's window and id are worked out once, in `EditionDay`, and passed on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from digest.collect import collect
from digest.collect.sources import resolve_sources
from digest.config import Settings
from digest.db import Database
from digest.deliver.run import RunReport, lock_owner, send_edition, send_lock
from digest.errors import LockHeld
from digest.group import GroupOptions, group
from digest.logs import edition_context
from digest.models import Edition, Shard, Subscriber

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EditionDay:
    """An edition's window of articles and its id, e.g. 'digest/2026-03-19'."""

    id: str
    start: datetime
    end: datetime

    @classmethod
    def of(
        cls, settings: Settings, now: datetime | None = None, since: datetime | None = None
    ) -> EditionDay:
        """The edition ending at `now` (default: now); `since` moves its start, for backfills.

        The id is the list and the end's date in DIGEST_TIMEZONE.
        """
        end = (now or datetime.now(UTC)).astimezone(UTC)
        start = since.astimezone(UTC) if since else end - timedelta(hours=settings.window_hours)
        day = end.astimezone(ZoneInfo(settings.timezone)).date().isoformat()
        return cls(id=f"{settings.list_id}/{day}", start=start, end=end)


def build_edition(
    settings: Settings, db: Database, day: EditionDay, feeds: list[str] | None = None
) -> Edition:
    """Collect and group the window's articles into one edition (nothing is sent or stored)."""
    sources = resolve_sources(settings, db.feeds, feeds)
    collection = collect(sources, day.start, day.end, db.feeds, settings)
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
        id=day.id,
        generated_at=datetime.now(UTC),
        window_start=day.start,
        window_end=day.end,
        themes=themes,
        feeds=collection.feeds,
    )


def preview_edition(
    settings: Settings,
    db: Database,
    *,
    now: datetime | None = None,
    since: datetime | None = None,
    feeds: list[str] | None = None,
) -> Edition:
    """Today's edition built afresh for a preview or a dry run; never stored, never sent."""
    day = EditionDay.of(settings, now, since)
    with edition_context(day.id):
        return build_edition(settings, db, day, feeds)


def run_edition(
    settings: Settings,
    db: Database,
    *,
    now: datetime | None = None,
    since: datetime | None = None,
    feeds: list[str] | None = None,
    shard: Shard | None = None,
    due: Callable[[Subscriber], bool] | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunReport:
    """Build (or reuse) the edition for `now` and send it: the whole daily sequence.

    `shard` limits the send to one worker's share, `due` to the subscribers whose
    delivery time has come, `stop` ends it early and cleanly. Raises LockHeld, before
    any feed is fetched, when this edition (or shard) is being sent already.
    """
    day = EditionDay.of(settings, now, since)
    with edition_context(day.id):
        try:
            db.ledger.check_lock(send_lock(day.id, shard))
        except LockHeld as exc:
            raise LockHeld(f"edition {day.id} is already being sent: {exc}") from None
        edition = stored_or_built_edition(settings, db, day, feeds)
        return send_edition(edition, settings, db, progress, shard=shard, due=due, stop=stop)


def stored_or_built_edition(
    settings: Settings, db: Database, day: EditionDay, feeds: list[str] | None = None
) -> Edition:
    """The edition stored for this day, or one built now and stored for every later run.

    Build once, send many: a rerun, the scheduler's hourly runs and every
    `--shard` worker send the same edition, and only the first to take the
    build lock fetches the feeds; the others wait for it and reuse it.
    """
    lock, owner = f"build {day.id}", lock_owner()
    deadline = time.monotonic() + settings.send_lock_timeout
    while (stored := db.editions.load(day.id)) is None:
        try:
            db.ledger.acquire_lock(lock, owner, settings.send_lock_timeout)
        except LockHeld:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
            continue
        try:
            if (stored := db.editions.load(day.id)) is None:
                edition = build_edition(settings, db, day, feeds)
                db.editions.save(edition)
                return edition
        finally:
            db.ledger.release_lock(lock, owner)
    log.info("reusing edition %s, built at %s", day.id, stored.generated_at.isoformat())
    return stored
