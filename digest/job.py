"""The daily job: build one edition, then render and send it to every subscriber.

This is the only module that strings the stages together:
collect -> group -> render -> deliver.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from digest.collect import collect
from digest.collect.sources import resolve_sources
from digest.config import Settings
from digest.deliver import (
    Composer,
    MessageTemplate,
    Outgoing,
    Sender,
    Verdict,
    needs_smtputf8,
    new_message_id,
    standin,
)
from digest.group import GroupOptions, group
from digest.logs import edition_context
from digest.models import DeliveryResult, Edition, Shard, Subscriber, SubscriberStatus
from digest.personalise import personalise
from digest.render import Renderer
from digest.store import LockHeld, Store

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What one send run did, for the operator, the exit status and the `runs` table."""

    edition_id: str
    subscribers: int = 0  # active when the run began
    sent: int = 0
    retried: int = 0  # temporary failures tried again
    failed: int = 0  # given up on in this run: 5xx, or 4xx until attempts ran out
    skipped: int = 0  # already delivered, or refused for good, in an earlier run
    bounced: int = 0  # marked bounced in this run
    undelivered: int = 0  # active subscribers still without the edition
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed else 0.0

    @property
    def status(self) -> str:
        """done: every active subscriber has the edition; partial; nothing: no subscribers."""
        if not self.subscribers:
            return "nothing"
        return "partial" if self.undelivered else "done"

    def summary(self) -> str:
        return (
            f"edition {self.edition_id}: sent {self.sent}, retried {self.retried}, "
            f"failed {self.failed}, skipped {self.skipped}, bounced {self.bounced} "
            f"in {self.elapsed:.1f}s ({self.rate:.1f} messages/s); "
            + (
                "no active subscribers, nothing to send"
                if self.status == "nothing"
                else f"{self.undelivered} of {self.subscribers} active subscribers without it"
            )
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "rate": round(self.rate, 1), "status": self.status}


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


def stored_or_built_edition(
    settings: Settings,
    store: Store,
    *,
    now: datetime | None = None,
    since: datetime | None = None,
    feeds: list[str] | None = None,
) -> Edition:
    """The edition stored for this date, or one built now and stored for every later run.

    Build once, send many: a rerun, the scheduler's hourly runs and every
    `--shard` worker send the same edition, and only the first to take the
    build lock fetches the feeds; the others wait for it and reuse it.
    """
    wanted = edition_id(settings, edition_window(settings, now, since)[1])
    lock, owner = f"build {wanted}", _owner()
    deadline = time.monotonic() + settings.send_lock_timeout
    while (stored := store.load_edition(wanted)) is None:
        try:
            store.acquire_lock(lock, owner, settings.send_lock_timeout)
        except LockHeld:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
            continue
        try:
            if (stored := store.load_edition(wanted)) is None:
                edition = build_edition(settings, store, now=now, since=since, feeds=feeds)
                store.save_edition(edition)
                return edition
        finally:
            store.release_lock(lock, owner)
    log.info("reusing edition %s, built at %s", wanted, stored.generated_at.isoformat())
    return stored


def _owner() -> str:
    """Who holds a lock, for the message another run is refused with."""
    return f"{socket.gethostname()}:{os.getpid()}"


# Scheduled sends (`digest schedule`): who is due when.


def send_due(
    settings: Settings, store: Store, now: datetime, *, hourly: bool, stop: threading.Event
) -> RunReport | None:
    """One scheduled send of the edition for `now`, to whoever is due and does not have it.

    At DIGEST_SEND_AT: subscribers without a delivery hour of their own. Hourly:
    those whose own hour has come in their time zone. None when nobody is waiting,
    so idle hours neither build an edition nor record a run.
    """
    due = _own_hour_reached(now) if hourly else _no_own_hour
    wanted = edition_id(settings, now)
    if not store.undelivered_count(wanted, due):
        return None
    with edition_context(wanted):
        edition = stored_or_built_edition(settings, store, now=now)
        report = send_edition(edition, settings, store, due=due, stop=stop)
        log.info("%s", report.summary())
    return report


def edition_sent(settings: Settings, store: Store, when: datetime) -> bool:
    """Whether everyone due at the daily send time has the edition for `when`."""
    return not store.undelivered_count(edition_id(settings, when), _no_own_hour)


def _no_own_hour(subscriber: Subscriber) -> bool:
    return subscriber.delivery_hour is None


def _own_hour_reached(now: datetime) -> Callable[[Subscriber], bool]:
    def due(subscriber: Subscriber) -> bool:
        hour = subscriber.delivery_hour
        return hour is not None and now.astimezone(ZoneInfo(subscriber.timezone)).hour >= hour

    return due


# Personalisation: each subscriber's own view of the edition, before rendering.


def quiet_edition(edition: Edition) -> Edition:
    """The edition with nothing in it: rendered, it is the short "quiet day" note."""
    return edition.model_copy(update={"themes": []})


def personal_edition(
    edition: Edition, subscriber: Subscriber, settings: Settings
) -> Edition | None:
    """What this subscriber should receive today, or None to skip them.

    With DIGEST_QUIET_DAY=note, a subscriber left with nothing gets the short
    quiet-day note instead of nothing.
    """
    mine = personalise(edition, subscriber)
    if mine is None and settings.quiet_day == "note":
        return quiet_edition(edition)
    return mine


def nothing_to_read(edition: Edition) -> str:
    """Why a subscriber gets nothing (or the quiet-day note) today, for the log."""
    if any(t.shown for t in edition.themes):
        return "their topics leave nothing to read today"
    return "the edition is empty today"


VIEW_CACHE_SIZE = 256  # distinct renderings kept built at once
SEND_BATCH = 500  # subscribers read, and their intents recorded, per transaction
FINAL_STATES = {"sent", "failed", "skipped"}  # never sent again for the same edition
# Marks a view whose templates transform per-subscriber values: rendered per message.
PER_SUBSCRIBER = MessageTemplate(())


def send_edition(
    edition: Edition,
    settings: Settings,
    store: Store,
    progress: Callable[[int, int], None] | None = None,
    *,
    shard: Shard | None = None,
    due: Callable[[Subscriber], bool] | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """Send the edition to every active subscriber who does not have it yet.

    `shard` limits the run to one worker's share of the list, `due` to the
    subscribers whose delivery time has come; `stop`, once set, ends the run
    after the messages already handed to the SMTP connections.

    Exactly once, as far as SMTP allows: a delivery row is written in state
    'sending', with its Message-ID, before the message goes out, and 'sent' only
    after the server's 250 (a worker takes its next message only once that is
    committed). A run that finds 'sending' rows left by a killed run sends those
    again *with the same Message-ID*: the server may or may not have taken them
    before the kill, and no SMTP reply can tell, so at most one message per pooled
    connection can arrive twice, and receivers that collapse duplicate Message-IDs
    show it once. The other choice, never resending them, would lose those
    messages for good. `progress(done, total)` is called as subscribers are settled.
    """
    audience = _Audience(shard, due, stop or threading.Event())
    return asyncio.run(
        _send_edition(edition, settings, store, progress or (lambda n, t: None), audience)
    )


@dataclass(frozen=True)
class _Audience:
    """Who a run sends to, and whether it has been asked to stop."""

    shard: Shard | None
    due: Callable[[Subscriber], bool] | None
    stop: threading.Event

    def wants(self, subscriber: Subscriber) -> bool:
        return (self.shard is None or subscriber.email in self.shard) and (
            self.due is None or self.due(subscriber)
        )

    @property
    def where(self) -> Callable[[Subscriber], bool] | None:
        """A filter for the store's counts, or None for every active subscriber."""
        return self.wants if self.shard or self.due else None


def send_lock(edition_id: str, shard: Shard | None = None) -> str:
    return f"send {edition_id}" + (f" shard {shard}" if shard else "")


def refuse_if_sending(
    settings: Settings,
    store: Store,
    now: datetime | None,
    since: datetime | None,
    shard: Shard | None = None,
) -> None:
    """Refuse early, before fetching any feed, when this edition is being sent already.

    send_edition takes the lock itself; this only saves a refused run the collection.
    """
    edition = edition_id(settings, edition_window(settings, now, since)[1])
    try:
        store.check_lock(send_lock(edition, shard))
    except LockHeld as exc:
        raise LockHeld(f"edition {edition} is already being sent: {exc}") from None


def view_key(subscriber: Subscriber) -> tuple:
    """What makes two subscribers' digests differ beyond name, address and links."""
    return (
        bool(subscriber.name),  # a template may say "Hello {{ name }}" or "Hello there"
        subscriber.format,
        subscriber.timezone,
        tuple(sorted(subscriber.topics_include)),
        tuple(sorted(subscriber.topics_exclude)),
    )


class Views:
    """Each distinct rendering, rendered and built into a message template once.

    The view step renders the edition for a stand-in with the subscriber's
    preferences; the template then takes each subscriber's own name, address
    and signed links. Kept to the most recent few, so memory stays flat.
    """

    def __init__(self, edition: Edition, settings: Settings, composer: Composer) -> None:
        self.edition = edition
        self.renderer = Renderer(settings)
        self.composer = composer
        self.settings = settings
        self._cache: OrderedDict[tuple, MessageTemplate | None] = OrderedDict()
        self._quiet: set[tuple] = set()

    def template(self, subscriber: Subscriber) -> MessageTemplate | None:
        """The subscriber's message template, or None when they get nothing today."""
        key = view_key(subscriber)
        if key not in self._cache:
            template = self._cache[key] = self._build(subscriber)
            if len(self._cache) > VIEW_CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
            template = self._cache[key]
        return template

    def quiet(self, subscriber: Subscriber) -> bool:
        """True when the subscriber's view is the quiet-day note."""
        return view_key(subscriber) in self._quiet

    def message(self, subscriber: Subscriber, message_id: str) -> bytes:
        template = self.template(subscriber)
        assert template is not None, "skipped subscribers are not sent a message"
        if template is PER_SUBSCRIBER:
            view = personal_edition(self.edition, subscriber, self.settings)
            assert view is not None
            template = self.composer.template(self.renderer.render(view, subscriber))
        return self.composer.message(template, subscriber, message_id)

    def _build(self, subscriber: Subscriber) -> MessageTemplate | None:
        stand_in = standin(subscriber)
        view = personal_edition(self.edition, stand_in, self.settings)
        if view is None:
            return None
        if not view.themes:
            self._quiet.add(view_key(subscriber))
        rendered = self.renderer.render(view, stand_in)
        if self.composer.has_leftovers(rendered):
            log.warning(
                "the templates change the subscriber's name, address or links (not only show "
                "them), so each message is rendered on its own: slower, but correct"
            )
            return PER_SUBSCRIBER
        return self.composer.template(rendered)


class _Recorder:
    """Makes each outcome durable before its worker moves on, committing together
    the outcomes that arrive in the same turn of the event loop."""

    def __init__(
        self,
        write: Callable[[str, list[dict], int], list[str]],
        settings: Settings,
        report: RunReport,
        progress: Callable[[int, int], None],
    ) -> None:
        self.write = write
        self.settings = settings
        self.report = report
        self.progress = progress
        self.previous_attempts: dict[str, int] = {}
        self._pending: list[dict] = []
        self._committed: asyncio.Future | None = None

    async def outcome(self, result: DeliveryResult) -> None:
        attempts = self.previous_attempts.pop(result.email, 0) + result.attempts
        row = {"email": result.email, "attempts": attempts, "state": "sent"}
        if result.ok:
            self.report.sent += 1
        else:
            self.report.failed += 1
            row.update(
                state="failed" if result.permanent else "deferred",
                error=result.error,
                bounce=result.bounce,
            )
            log.warning(
                "delivery failed: edition=%s email=%s state=%s attempts=%d error=%r",
                self.report.edition_id,
                result.email,
                row["state"],
                attempts,
                result.error,
            )
        self._pending.append(row)
        if self._committed is None:
            self._committed = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(self._commit)
        await asyncio.shield(self._committed)
        self.progress(1, self.report.subscribers)

    def retry(self, job: Outgoing, verdict: Verdict) -> None:
        self.report.retried += 1
        log.info(
            "delivery retry: edition=%s email=%s attempt=%d error=%r",
            self.report.edition_id,
            job.email,
            job.attempts,
            verdict.error,
        )

    def _commit(self) -> None:
        rows, self._pending = self._pending, []
        committed, self._committed = self._committed, None
        assert committed is not None
        try:
            bounced = self.write(self.report.edition_id, rows, self.settings.bounce_threshold)
        except Exception as exc:  # every waiting worker sees it; the run stops
            committed.set_exception(exc)
            return
        self.report.bounced += len(bounced)
        for email in bounced:
            log.warning("subscriber bounced: email=%s (no longer sent to)", email)
        committed.set_result(None)


async def _send_edition(
    edition: Edition,
    settings: Settings,
    store: Store,
    progress: Callable[[int, int], None],
    audience: _Audience,
) -> RunReport:
    began = time.perf_counter()
    report = RunReport(edition_id=edition.id)
    composer = Composer(settings)
    lock, owner = send_lock(edition.id, audience.shard), _owner()
    try:
        store.acquire_lock(lock, owner, settings.send_lock_timeout)
    except LockHeld as exc:
        raise LockHeld(f"edition {edition.id} is already being sent: {exc}") from None
    run_id = store.start_run(edition.id, str(audience.shard) if audience.shard else None)
    status = "error"
    try:
        report.subscribers = store.count_subscribers(SubscriberStatus.active, audience.where)
        lost = asyncio.Event()
        keeper = asyncio.create_task(_keep_lock(store, lock, owner, settings, lost))
        try:
            if report.subscribers:
                views = Views(edition, settings, composer)
                with store.outcome_writer() as write:
                    recorder = _Recorder(write, settings, report, progress)
                    async with Sender(settings, recorder.outcome, recorder.retry) as sender:
                        await _submit_all(views, settings, store, sender, recorder, lost, audience)
        finally:
            keeper.cancel()
        if lost.is_set():
            raise LockHeld(
                f"lost the lock on edition {edition.id} (not renewed in time: "
                "DIGEST_SEND_LOCK_TIMEOUT too short?); stopped sending, run again to finish"
            )
        store.reset_bounces(edition.id)
        report.undelivered = store.undelivered_count(edition.id, audience.where)
        status = report.status
    finally:
        report.elapsed = time.perf_counter() - began
        store.finish_run(run_id, status, report.as_dict())
        store.release_lock(lock, owner)
    return report


async def _submit_all(
    views: Views,
    settings: Settings,
    store: Store,
    sender: Sender,
    recorder: _Recorder,
    lost: asyncio.Event,
    audience: _Audience,
) -> None:
    """Stream the audience in batches; record intent per batch, then queue each."""
    batch: list[Subscriber] = []
    for subscriber in store.iter_subscribers(SubscriberStatus.active, batch=SEND_BATCH):
        if not audience.wants(subscriber):
            continue
        batch.append(subscriber)
        if len(batch) < SEND_BATCH:
            continue
        await _submit_batch(batch, views, settings, store, sender, recorder, audience.stop)
        batch = []
        if lost.is_set() or audience.stop.is_set():
            return
    await _submit_batch(batch, views, settings, store, sender, recorder, audience.stop)


async def _submit_batch(
    batch: list[Subscriber],
    views: Views,
    settings: Settings,
    store: Store,
    sender: Sender,
    recorder: _Recorder,
    stop: threading.Event,
) -> None:
    edition_id = views.edition.id
    rows = store.delivery_rows(edition_id, [s.email for s in batch])
    todo: list[tuple[Subscriber, str]] = []
    new: list[tuple[str, str]] = []
    again: list[tuple[str, str]] = []
    nothing_for: list[str] = []
    for subscriber in batch:
        row = rows.get(subscriber.email)
        if row is not None and row.state in FINAL_STATES:
            recorder.report.skipped += 1
            continue
        if views.template(subscriber) is None:
            log.info(
                "skipping %s: %s (DIGEST_QUIET_DAY=skip)",
                subscriber.email,
                nothing_to_read(views.edition),
            )
            nothing_for.append(subscriber.email)
            continue
        if views.quiet(subscriber):
            log.info(
                "sending %s the quiet-day note: %s",
                subscriber.email,
                nothing_to_read(views.edition),
            )
        # A copy of an edition keeps its Message-ID across runs (see send_edition).
        message_id = row.message_id if row and row.message_id else new_message_id(settings)
        (again if row else new).append((subscriber.email, message_id))
        recorder.previous_attempts[subscriber.email] = row.attempts if row else 0
        todo.append((subscriber, message_id))
    recorder.report.skipped += len(nothing_for)
    if len(todo) < len(batch):
        recorder.progress(len(batch) - len(todo), recorder.report.subscribers)
    store.record_skipped(edition_id, nothing_for)
    store.record_sending(edition_id, new, again)
    for subscriber, message_id in todo:
        if stop.is_set():
            # Recorded as 'sending' but never handed over: the next run sends them.
            log.info("stop requested: leaving the rest of the edition for the next run")
            return
        await sender.submit(
            Outgoing(
                email=subscriber.email,
                message_id=message_id,
                data=views.message(subscriber, message_id),
                smtputf8=needs_smtputf8(subscriber.email),
            )
        )


async def _keep_lock(
    store: Store, lock: str, owner: str, settings: Settings, lost: asyncio.Event
) -> None:
    """Renew the edition lock while sending, so only a dead run's lock expires."""
    while True:
        await asyncio.sleep(settings.send_lock_timeout / 3)
        if not store.renew_lock(lock, owner, settings.send_lock_timeout):
            log.error("lost the lock %r: stopping after the messages already queued", lock)
            lost.set()
            return
