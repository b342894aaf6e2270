"""One send run: an edition to every active subscriber who does not have it yet,
each delivery recorded in the ledger as it happens.

Exactly once, as far as SMTP allows: a delivery row is written in state
`sending`, with its Message-ID, before the message goes out, and `sent` only
after the server's 250 (a worker takes its next message only once that is
committed). A run that finds `sending` rows left by a killed run sends those
again *with the same Message-ID*: the server may or may not have taken them
before the kill, and no SMTP reply can tell, so at most one message per pooled
connection can arrive twice, and receivers that collapse duplicate Message-IDs
show it once. The other choice, never resending them, would lose those
messages for good.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from digest.config import Settings
from digest.db import Database
from digest.db.ledger import Outcome, OutcomeWriter, send_lock
from digest.deliver.message import Composer, needs_smtputf8, new_message_id
from digest.deliver.sender import Outgoing, Sender, Verdict
from digest.deliver.views import Views
from digest.errors import LockHeld
from digest.logs import subscriber_ref
from digest.models import (
    DeliveryResult,
    DeliveryState,
    Edition,
    RunStatus,
    Shard,
    Subscriber,
    SubscriberStatus,
)
from digest.personalise import nothing_to_read

log = logging.getLogger(__name__)

SEND_BATCH = 500  # subscribers read, and their intents recorded, per transaction
Progress = Callable[[int, int], None]


@dataclass
class RunReport:
    """What one send run did, for the operator, the exit status and the `runs` table."""

    edition_id: str
    shard: str = ""  # "K/N" when one worker's share was sent
    subscribers: int = 0  # active when the run began (in the shard)
    sent: int = 0
    retried: int = 0  # temporary failures tried again
    failed: int = 0  # given up on in this run: 5xx, or 4xx until attempts ran out
    skipped: int = 0  # already delivered, or refused for good, in an earlier run
    bounced: int = 0  # marked bounced in this run
    uncertain: int = 0  # sent, but the server never answered: not sent again
    undelivered: int = 0  # active subscribers still without the edition
    refused: int = 0  # of those, failed for good (a 5xx, an unsendable message): not retried
    unusable: int = 0  # records that cannot be used (e.g. an unknown time zone): skipped
    elapsed: float = 0.0
    run_id: int = 0  # its row in the runs table

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed else 0.0

    @property
    def status(self) -> RunStatus:
        """done: every active subscriber has the edition, or was refused it for good in an
        earlier run (a rerun cannot change that); partial: some failed in this run, or a
        rerun would still try some; nothing: no subscribers."""
        if not self.subscribers:
            return RunStatus.nothing
        retriable = self.undelivered > self.refused
        refused_now = self.failed and self.refused  # a refusal that bounced them is no gap
        return RunStatus.partial if retriable or refused_now else RunStatus.done

    def summary(self) -> str:
        return (
            f"edition {self.edition_id}: sent {self.sent}, retried {self.retried}, "
            f"failed {self.failed}, skipped {self.skipped}, bounced {self.bounced}, "
            f"uncertain {self.uncertain} "
            f"in {self.elapsed:.1f}s ({self.rate:.1f} messages/s); "
            + (
                f"no active subscribers{' in shard ' + self.shard if self.shard else ''}, "
                "nothing to send"
                if self.status is RunStatus.nothing
                else f"{self.undelivered} of {self.subscribers} active subscribers without it"
            )
            + (f" ({self.refused} failed for good, not retried)" if self.refused else "")
            + (f"; {self.unusable} unusable records skipped" if self.unusable else "")
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "rate": round(self.rate, 1), "status": self.status.value}


def lock_owner() -> str:
    """Who holds a lock, for the message another run is refused with."""
    return f"{socket.gethostname()}:{os.getpid()}"


def send_edition(
    edition: Edition,
    settings: Settings,
    db: Database,
    progress: Progress | None = None,
    *,
    shard: Shard | None = None,
    due: Callable[[Subscriber], bool] | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """Send the edition to every active subscriber who does not have it yet.

    `shard` limits the run to one worker's share of the list, `due` to the
    subscribers whose delivery time has come; `stop`, once set, ends the run
    after the messages already handed to the SMTP connections.
    `progress(done, total)` is called as subscribers are settled.
    """
    audience = _Audience(shard, due, stop or threading.Event())
    return asyncio.run(
        _send_edition(edition, settings, db, progress or (lambda n, t: None), audience)
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
        """A filter for the ledger's counts, or None for every active subscriber."""
        return self.wants if self.shard or self.due else None


class _Recorder:
    """Makes each outcome durable before its worker moves on, committing together
    the outcomes that arrive in the same turn of the event loop."""

    def __init__(
        self, write: OutcomeWriter, settings: Settings, report: RunReport, progress: Progress
    ) -> None:
        self.write = write
        self.settings = settings
        self.report = report
        self.progress = progress
        self.previous_attempts: dict[str, int] = {}
        self._pending: list[Outcome] = []
        self._committed: asyncio.Future | None = None

    async def outcome(self, result: DeliveryResult) -> None:
        attempts = self.previous_attempts.pop(result.email, 0) + result.attempts
        if result.ok:
            self.report.sent += 1
            outcome = Outcome(result.email, DeliveryState.sent, attempts)
        elif result.uncertain:
            self.report.uncertain += 1
            outcome = Outcome(result.email, DeliveryState.uncertain, attempts, result.error)
            log.warning(
                "delivery uncertain (not sent again): edition=%s subscriber=%s attempts=%d "
                "error=%r",
                self.report.edition_id,
                subscriber_ref(result.email),
                attempts,
                result.error,
            )
        else:
            self.report.failed += 1
            state = DeliveryState.failed if result.permanent else DeliveryState.deferred
            outcome = Outcome(result.email, state, attempts, result.error, result.bounce)
            log.warning(
                "delivery failed: edition=%s subscriber=%s state=%s attempts=%d error=%r",
                self.report.edition_id,
                subscriber_ref(result.email),
                state.value,
                attempts,
                result.error,
            )
        self._pending.append(outcome)
        if self._committed is None:
            self._committed = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(self._commit)
        await asyncio.shield(self._committed)
        self.progress(1, self.report.subscribers)

    def retry(self, job: Outgoing, verdict: Verdict) -> None:
        self.report.retried += 1
        log.info(
            "delivery retry: edition=%s subscriber=%s attempt=%d error=%r",
            self.report.edition_id,
            subscriber_ref(job.email),
            job.attempts,
            verdict.error,
        )

    def _commit(self) -> None:
        outcomes, self._pending = self._pending, []
        committed, self._committed = self._committed, None
        assert committed is not None
        try:
            bounced = self.write(self.report.edition_id, outcomes, self.settings.bounce_threshold)
        except Exception as exc:  # every waiting worker sees it; the run stops
            committed.set_exception(exc)
            return
        self.report.bounced += len(bounced)
        for email in bounced:
            log.warning(
                "subscriber bounced: subscriber=%s (no longer sent to)", subscriber_ref(email)
            )
        committed.set_result(None)


async def _send_edition(
    edition: Edition, settings: Settings, db: Database, progress: Progress, audience: _Audience
) -> RunReport:
    began = time.perf_counter()
    report = RunReport(edition_id=edition.id, shard=str(audience.shard or ""))
    composer = Composer(settings)
    ledger = db.ledger
    lock, owner = send_lock(edition.id, audience.shard), lock_owner()
    try:
        ledger.acquire_lock(lock, owner, settings.send_lock_timeout)
    except LockHeld as exc:
        raise LockHeld(f"edition {edition.id} is already being sent: {exc}") from None
    run_id = report.run_id = ledger.start_run(
        edition.id, str(audience.shard) if audience.shard else None
    )
    status = RunStatus.error
    try:
        report.subscribers = db.subscribers.count(SubscriberStatus.active, audience.where)
        lost = asyncio.Event()
        keeper = asyncio.create_task(_keep_lock(db, lock, owner, settings, lost))
        try:
            if report.subscribers:
                views = Views(edition, settings, composer)
                with ledger.outcome_writer() as write:
                    recorder = _Recorder(write, settings, report, progress)
                    async with Sender(settings, recorder.outcome, recorder.retry) as sender:
                        await _submit_all(views, settings, db, sender, recorder, lost, audience)
        finally:
            keeper.cancel()
        if lost.is_set():
            raise LockHeld(
                f"lost the lock on edition {edition.id} (not renewed in time: "
                "DIGEST_SEND_LOCK_TIMEOUT too short?); stopped sending, run again to finish"
            )
        ledger.reset_bounces(edition.id)
        # Counted in SQL, unless unusable records (which SQL would count) must be left out.
        where = audience.where or (_everyone if report.unusable else None)
        report.undelivered = ledger.undelivered_count(edition.id, where)
        to_try = ledger.undelivered_count(edition.id, where, to_try=True)
        report.refused = report.undelivered - to_try
        status = report.status
    finally:
        report.elapsed = time.perf_counter() - began
        ledger.finish_run(run_id, status, report.as_dict())
        ledger.release_lock(lock, owner)
    return report


def _everyone(_: Subscriber) -> bool:
    return True


async def _submit_all(
    views: Views,
    settings: Settings,
    db: Database,
    sender: Sender,
    recorder: _Recorder,
    lost: asyncio.Event,
    audience: _Audience,
) -> None:
    """Stream the audience in batches; record intent per batch, then queue each."""

    def unusable(record_id: int, email: str, why: str) -> None:
        if audience.shard is None or email in audience.shard:
            recorder.report.unusable += 1
            log.warning("skipping a subscriber: %s", why)

    batch: list[Subscriber] = []
    active = db.subscribers.iter(SubscriberStatus.active, batch=SEND_BATCH, unusable=unusable)
    for subscriber in active:
        if not audience.wants(subscriber):
            continue
        batch.append(subscriber)
        if len(batch) < SEND_BATCH:
            continue
        await _submit_batch(batch, views, settings, db, sender, recorder, audience.stop)
        batch = []
        if lost.is_set() or audience.stop.is_set():
            return
    await _submit_batch(batch, views, settings, db, sender, recorder, audience.stop)


async def _submit_batch(
    batch: list[Subscriber],
    views: Views,
    settings: Settings,
    db: Database,
    sender: Sender,
    recorder: _Recorder,
    stop: threading.Event,
) -> None:
    edition_id = views.edition.id
    rows = db.ledger.rows(edition_id, [s.email for s in batch])
    todo: list[tuple[Subscriber, str]] = []
    new: list[tuple[str, str]] = []
    again: list[tuple[str, str]] = []
    nothing_for: list[str] = []
    for subscriber in batch:
        row = rows.get(subscriber.email)
        if row is not None and row.state.final:
            recorder.report.skipped += 1
            continue
        if views.template(subscriber) is None:
            log.info(
                "skipping %s: %s (DIGEST_QUIET_DAY=skip)",
                subscriber_ref(subscriber.email),
                nothing_to_read(views.edition),
            )
            nothing_for.append(subscriber.email)
            continue
        if views.quiet(subscriber):
            log.info(
                "sending %s the quiet-day note: %s",
                subscriber_ref(subscriber.email),
                nothing_to_read(views.edition),
            )
        # A copy of an edition keeps its Message-ID across runs (see the module docstring).
        message_id = row.message_id if row and row.message_id else new_message_id(settings)
        (again if row else new).append((subscriber.email, message_id))
        recorder.previous_attempts[subscriber.email] = row.attempts if row else 0
        todo.append((subscriber, message_id))
    recorder.report.skipped += len(nothing_for)
    if len(todo) < len(batch):
        recorder.progress(len(batch) - len(todo), recorder.report.subscribers)
    db.ledger.record_skipped(edition_id, nothing_for)
    db.ledger.record_sending(edition_id, new, again)
    for subscriber, message_id in todo:
        if stop.is_set():
            # Recorded as `sending` but never handed over: the next run sends them.
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
    db: Database, lock: str, owner: str, settings: Settings, lost: asyncio.Event
) -> None:
    """Renew the edition lock while sending, so only a dead run's lock expires."""
    while True:
        await asyncio.sleep(settings.send_lock_timeout / 3)
        if not db.ledger.renew_lock(lock, owner, settings.send_lock_timeout):
            log.error("lost the lock %r: stopping after the messages already queued", lock)
            lost.set()
            return
