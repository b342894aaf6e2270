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
from datetime import time as day_time
from zoneinfo import ZoneInfo

from digest import alerts
from digest.collect import collect
from digest.collect.sources import resolve_sources
from digest.config import Settings
from digest.db import Database
from digest.db.ledger import send_lock
from digest.deliver.run import RunReport, lock_owner, send_edition
from digest.errors import CollectionFailed, DigestError, LockHeld
from digest.group import GroupOptions, group
from digest.logs import edition_context
from digest.models import Edition, RunStatus, Shard, Subscriber
from digest.outage import RECENT_DAYS, enough_at_deadline, outage_reason

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
        if start >= end:
            raise DigestError(
                f"--since {start.isoformat()} is not before the window's end {end.isoformat()} "
                "(--now, or the current time): no article could be in it; pass an earlier --since"
            )
        day = end.astimezone(ZoneInfo(settings.timezone)).date().isoformat()
        return cls(id=f"{settings.list_id}/{day}", start=start, end=end)


def send_deadline(when: datetime, settings: Settings) -> datetime:
    """DIGEST_SEND_DEADLINE on the day of `when` in DIGEST_TIMEZONE (aware UTC): until
    then a feed outage is waited out; from then on what was collected is sent."""
    tz = ZoneInfo(settings.timezone)
    hour, minute = (int(part) for part in settings.send_deadline.split(":")[:2])
    local_day = when.astimezone(tz).date()
    return datetime.combine(local_day, day_time(hour, minute), tz).astimezone(UTC)


def build_edition(
    settings: Settings,
    db: Database,
    day: EditionDay,
    feeds: list[str] | None = None,
    *,
    count_health: bool = True,
) -> Edition:
    """Collect and group the window's articles into one edition (nothing is sent or stored).

    Only real runs pass `count_health`: previews and dry runs never move a feed toward dead.
    """
    sources = resolve_sources(settings, db.feeds, feeds)
    collection = collect(sources, day.start, day.end, db.feeds, settings, count_health=count_health)
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
    refuse_outage: bool = False,
) -> Edition:
    """The edition a run for `now` would send, for a preview or a dry run: the one stored
    for that day if a run built it (every later run sends that one) and neither `feeds`
    nor `since` asks for another, else built afresh, never stored, and never counted
    toward any feed's health.

    With `refuse_outage` (a dry run), CollectionFailed when the feeds are down, as
    the real run would stop; else a warning is logged and the edition returned.
    """
    day = EditionDay.of(settings, now, since)
    with edition_context(day.id):
        # --feeds and --since ask for another collection than the stored one.
        stored = db.editions.load(day.id) if feeds is None and since is None else None
        if stored is not None:
            log.info(
                "showing edition %s as built at %s and sent since (runs reuse it)",
                day.id,
                stored.generated_at.isoformat(),
            )
            return stored
        edition = build_edition(settings, db, day, feeds, count_health=False)
        try:
            _refuse_outage(settings, db, day, edition)
        except CollectionFailed as exc:
            if refuse_outage:
                raise
            log.warning("a real run would send nothing now: %s", exc)
        return edition


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
    retry: bool = False,
) -> RunReport:
    """Build (or reuse) the edition for `now` and send it: the whole daily sequence.

    `shard` limits the send to one worker's share, `due` to the subscribers whose
    delivery time has come, `stop` ends it early and cleanly; `retry` marks the
    scheduler's further attempts at a morning, which do not count toward feed health.
    Raises LockHeld, before any feed is fetched, when this edition (or shard) is being
    sent already, and CollectionFailed when the feeds are down (see digest.outage):
    then nothing is stored or sent, and the run is recorded as failed with the reason.
    The operator is alerted (digest.alerts) after a failed or partial run, a feed
    turning dead, or many bounces.
    """
    day = EditionDay.of(settings, now, since)
    notes: list[str] = []
    with edition_context(day.id):
        try:  # before any feed is fetched: no message can go without it
            settings.require_secret_key()
        except DigestError as exc:
            _alert(settings, db, day, alerts.run_failed(day.id, "stopped", str(exc)))
            raise
        try:
            db.ledger.check_lock(send_lock(day.id, shard))
        except LockHeld as exc:
            raise LockHeld(f"edition {day.id} is already being sent: {exc}") from None
        try:
            edition = stored_or_built_edition(
                settings, db, day, feeds, count_health=not retry, notes=notes
            )
        except CollectionFailed as exc:
            status = "missed the morning" if exc.missed else "failed"
            notes.append(_alert(settings, db, day, alerts.run_failed(day.id, status, exc.reason)))
            run_id = db.ledger.start_run(day.id, str(shard) if shard else None)
            report = {"status": RunStatus.failed.value, "reason": str(exc), "alerts": notes}
            db.ledger.finish_run(run_id, RunStatus.failed, report)
            raise
        try:
            report = send_edition(edition, settings, db, progress, shard=shard, due=due, stop=stop)
        except LockHeld:
            raise
        except DigestError as exc:
            _alert(settings, db, day, alerts.run_failed(day.id, "stopped", str(exc)))
            raise
        if report.status is RunStatus.partial:
            missing = f"{report.undelivered} of {report.subscribers} active subscribers"
            again = report.undelivered - report.refused
            parts = [f"{again} a rerun retries"] if again else []
            if report.refused:
                parts.append(f"{report.refused} failed for good (see the log), not retried")
            problem = f"{missing} are without it: {'; '.join(parts)}"
            notes.append(
                _alert(settings, db, day, alerts.run_failed(day.id, "was partial", problem))
            )
        if report.bounced >= settings.alert_bounces:
            bounced = alerts.many_bounces(day.id, report.bounced, settings.alert_bounces)
            notes.append(_alert(settings, db, day, bounced))
        if notes:
            db.ledger.note_run(report.run_id, notes)
        return report


def _alert(settings: Settings, db: Database, day: EditionDay, alert: alerts.Alert) -> str:
    return alerts.raise_alert(alert, settings, db.ledger, day.end)


def stored_or_built_edition(
    settings: Settings,
    db: Database,
    day: EditionDay,
    feeds: list[str] | None = None,
    *,
    count_health: bool = True,
    notes: list[str] | None = None,
) -> Edition:
    """The edition stored for this day, or one built now and stored for every later run.

    Build once, send many: a rerun, the scheduler's hourly runs and every
    `--shard` worker send the same edition, and only the first to take the
    build lock fetches the feeds; the others wait for it and reuse it. An edition
    collected during a feed outage is never stored (CollectionFailed instead).
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
                edition = build_edition(settings, db, day, feeds, count_health=count_health)
                if count_health:
                    _alert_dead_feeds(settings, db, day, edition, notes)
                _refuse_outage(settings, db, day, edition)
                db.editions.save(edition)
                return edition
        finally:
            db.ledger.release_lock(lock, owner)
    log.info("reusing edition %s, built at %s", day.id, stored.generated_at.isoformat())
    return stored


def _refuse_outage(settings: Settings, db: Database, day: EditionDay, edition: Edition) -> None:
    """Raise CollectionFailed when the collection is an outage, not a quiet day."""
    failing = any(not f.ok for f in edition.feeds)
    recent = _recent_article_counts(settings, db, day) if failing else []
    reason = outage_reason(edition.feeds, edition.article_count, recent, settings.collect_min_share)
    if reason is None:
        return
    if day.end < send_deadline(day.end, settings):
        raise CollectionFailed(
            f"the feeds are down: {reason}; nothing was stored or sent, and no subscriber "
            "was skipped: the next run collects again (`digest feeds check` shows each feed)",
            reason,
        )
    if enough_at_deadline(edition.article_count):
        log.warning(
            "%s, but DIGEST_SEND_DEADLINE (%s) has passed: sending the %d articles there are",
            reason,
            settings.send_deadline,
            edition.article_count,
        )
        return
    raise CollectionFailed(
        f"missed the morning: {reason}, and DIGEST_SEND_DEADLINE ({settings.send_deadline}) "
        "has passed with nothing to send; `digest feeds check` shows each feed",
        reason,
        missed=True,
    )


def _recent_article_counts(settings: Settings, db: Database, day: EditionDay) -> list[int]:
    """Articles in the editions stored for the days before this one (at most RECENT_DAYS)."""
    counts = []
    for back in range(1, RECENT_DAYS + 1):
        earlier = db.editions.load(EditionDay.of(settings, day.end - timedelta(days=back)).id)
        if earlier is not None:
            counts.append(earlier.article_count)
    return counts


def _alert_dead_feeds(
    settings: Settings,
    db: Database,
    day: EditionDay,
    edition: Edition,
    notes: list[str] | None,
) -> None:
    """Alert once for the feeds that have just reached DIGEST_FEED_DEAD_AFTER failed runs."""
    dead = [
        (f.url, f.failures, f.error or "failed")
        for f in edition.feeds
        if not f.ok and f.failures == settings.feed_dead_after
    ]
    if dead:
        note = _alert(settings, db, day, alerts.feeds_dead(dead))
        if notes is not None:
            notes.append(note)
