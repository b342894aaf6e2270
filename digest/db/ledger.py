"""The delivery ledger: who has which edition (deliveries), each send run (runs),
and the named locks that keep two runs from sending one edition at once.

States are `DeliveryState` values; which of them are final is the enum's business.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from digest.db._sql import aware, chunks, insert_ignoring_duplicates, now_utc, record
from digest.db.schema import deliveries, locks, runs, subscribers
from digest.db.subscribers import SubscriberRepository, with_status
from digest.errors import LockHeld
from digest.models import Subscriber
from digest.states import FINAL_STATES, HAS_EDITION, DeliveryState, RunStatus, SubscriberStatus


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """Where one subscriber's copy of one edition stands."""

    state: DeliveryState
    message_id: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one message of a run ended, as the ledger records it."""

    email: str
    state: DeliveryState
    attempts: int
    error: str | None = None
    bounce: bool = False  # the address itself was refused for good


@dataclass(frozen=True, slots=True)
class RunRow:
    """One send run and the report it stored."""

    id: int
    edition_id: str
    shard: str | None
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    report: dict


OutcomeWriter = Callable[[str, list[Outcome], int], list[str]]


class Ledger:
    """Deliveries, runs and locks: what a send run reads and records."""

    def __init__(self, engine: sa.Engine, subscribers: SubscriberRepository) -> None:
        self.engine = engine
        self.subscribers = subscribers

    # Deliveries

    def rows(self, edition_id: str, emails: list[str]) -> dict[str, DeliveryRow]:
        """The delivery rows that exist for these subscribers and this edition."""
        found: dict[str, DeliveryRow] = {}
        columns = (deliveries.c.email, deliveries.c.state)
        columns += (deliveries.c.message_id, deliveries.c.attempts)
        with self.engine.connect() as conn:
            for chunk in chunks(emails):
                rows = conn.execute(
                    sa.select(*columns).where(
                        deliveries.c.edition_id == edition_id, deliveries.c.email.in_(chunk)
                    )
                )
                found.update(
                    {
                        r.email: DeliveryRow(DeliveryState(r.state), r.message_id, r.attempts)
                        for r in rows
                    }
                )
        return found

    def record_sending(
        self, edition_id: str, new: list[tuple[str, str]], again: list[tuple[str, str]]
    ) -> None:
        """Record the intent to send (email, Message-ID) before anything goes out."""
        stamp = now_utc()
        sending = DeliveryState.sending.value
        with self.engine.begin() as conn:
            if new:
                conn.execute(
                    deliveries.insert(),
                    [
                        {
                            "edition_id": edition_id,
                            "email": email,
                            "state": sending,
                            "message_id": message_id,
                            "attempts": 0,
                            "updated_at": stamp,
                        }
                        for email, message_id in new
                    ],
                )
            if again:
                conn.execute(
                    deliveries.update()
                    .where(
                        deliveries.c.edition_id == edition_id,
                        deliveries.c.email == sa.bindparam("b_email"),
                    )
                    .values(
                        state=sending, message_id=sa.bindparam("b_message_id"), updated_at=stamp
                    ),
                    [{"b_email": e, "b_message_id": m} for e, m in again],
                )

    def record_skipped(self, edition_id: str, emails: list[str]) -> None:
        """Remember subscribers who get nothing of this edition, so reruns skip them too."""
        if not emails:
            return
        stamp = now_utc()
        with self.engine.begin() as conn:
            conn.execute(
                insert_ignoring_duplicates(conn, deliveries),
                [
                    {
                        "edition_id": edition_id,
                        "email": email,
                        "state": DeliveryState.skipped.value,
                        "attempts": 0,
                        "updated_at": stamp,
                    }
                    for email in emails
                ],
            )

    @contextmanager
    def outcome_writer(self) -> Iterator[OutcomeWriter]:
        """Record final outcomes over one held connection: a send run commits every few
        messages, and checking a connection out for each commit costs more than it.

        writer(edition_id, outcomes, bounce_threshold) returns the addresses newly
        marked bounced: a bounce adds one to the subscriber's consecutive bounces, and
        reaching the threshold marks them bounced (`reset_bounces` clears the count).
        """
        with self.engine.connect() as conn:
            yield partial(_record_outcomes, conn)

    def reset_bounces(self, edition_id: str) -> None:
        """Subscribers who received this edition have no consecutive bounces."""
        sent = sa.select(deliveries.c.email).where(
            deliveries.c.edition_id == edition_id, deliveries.c.state == DeliveryState.sent.value
        )
        with self.engine.begin() as conn:
            conn.execute(
                subscribers.update()
                .where(subscribers.c.consecutive_bounces > 0, subscribers.c.email.in_(sent))
                .values(consecutive_bounces=0)
            )

    def undelivered_count(
        self,
        edition_id: str,
        where: Callable[[Subscriber], bool] | None = None,
        *,
        to_try: bool = False,
    ) -> int:
        """Active subscribers (for whom `where` holds) who do not have this edition; with
        `to_try`, only those a rerun would send it to (not those refused for good)."""
        done_states = FINAL_STATES if to_try else HAS_EDITION
        if where is not None:
            missing = 0
            active = self.subscribers.iter(SubscriberStatus.active)
            chosen = (s.email for s in active if where(s))
            while batch := list(itertools.islice(chosen, 500)):
                rows = self.rows(edition_id, batch)
                missing += sum(e not in rows or rows[e].state not in done_states for e in batch)
            return missing
        done = sa.select(deliveries.c.email).where(
            deliveries.c.edition_id == edition_id,
            deliveries.c.state.in_([s.value for s in done_states]),
        )
        query = (
            sa.select(sa.func.count())
            .select_from(subscribers)
            .where(with_status(SubscriberStatus.active), subscribers.c.email.not_in(done))
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def states(self, edition_id: str) -> dict[DeliveryState, int]:
        """How many deliveries of the edition are in each state."""
        query = (
            sa.select(deliveries.c.state, sa.func.count())
            .where(deliveries.c.edition_id == edition_id)
            .group_by(deliveries.c.state)
        )
        with self.engine.connect() as conn:
            return {DeliveryState(state): n for state, n in conn.execute(query)}

    # Locks

    def acquire_lock(self, name: str, owner: str, seconds: float) -> None:
        """Take the named lock for `seconds` (renew it to keep it), or raise LockHeld.

        A lock whose holder stopped renewing it (crashed, killed) is taken over once
        it has expired.
        """
        stamp = now_utc()
        with self.engine.begin() as conn:
            conn.execute(locks.delete().where(locks.c.name == name, locks.c.expires_at < stamp))
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    locks.insert().values(
                        name=name,
                        owner=owner,
                        acquired_at=stamp,
                        expires_at=stamp + timedelta(seconds=seconds),
                    )
                )
        except IntegrityError:
            self.check_lock(name)
            raise LockHeld(f"{name} was just taken by another run") from None

    def check_lock(self, name: str) -> None:
        """Raise LockHeld, naming the holder and when it expires, if the lock is held."""
        with self.engine.connect() as conn:
            row = conn.execute(
                locks.select().where(locks.c.name == name, locks.c.expires_at >= now_utc())
            ).first()
        if row is not None:
            raise LockHeld(
                f"{name} is held by {row.owner} since {aware(row.acquired_at):%Y-%m-%d %H:%M:%S}"
                f" UTC; if that run crashed, the lock expires at {aware(row.expires_at):%H:%M:%S}"
                " UTC (DIGEST_SEND_LOCK_TIMEOUT): run again after that"
            )

    def renew_lock(self, name: str, owner: str, seconds: float) -> bool:
        """Push the expiry on; False when the lock is no longer ours."""
        with self.engine.begin() as conn:
            result = conn.execute(
                locks.update()
                .where(locks.c.name == name, locks.c.owner == owner)
                .values(expires_at=now_utc() + timedelta(seconds=seconds))
            )
        return result.rowcount == 1

    def release_lock(self, name: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(locks.delete().where(locks.c.name == name, locks.c.owner == owner))

    # Runs

    def start_run(self, edition_id: str, shard: str | None = None) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                runs.insert().values(
                    edition_id=edition_id,
                    started_at=now_utc(),
                    status=RunStatus.running.value,
                    shard=shard,
                )
            )
        return result.inserted_primary_key[0]  # type: ignore[index]

    def finish_run(self, run_id: int, status: RunStatus, report: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(finished_at=now_utc(), status=status.value, report=json.dumps(report))
            )

    def note_run(self, run_id: int, notes: list[str]) -> None:
        """Keep notes (the alerts a run raised) with its report, for `digest runs`."""
        with self.engine.begin() as conn:
            stored = conn.execute(sa.select(runs.c.report).where(runs.c.id == run_id)).scalar()
            report = json.loads(stored or "{}")
            report["alerts"] = [*report.get("alerts", []), *notes]
            conn.execute(runs.update().where(runs.c.id == run_id).values(report=json.dumps(report)))

    # Alerts: at most one of each kind a day, however many runs and workers raise it.

    def claim_alert(self, kind: str, day: date) -> bool:
        """True for the first claim of `kind` on `day`: a lock kept for two days."""
        try:
            self.acquire_lock(_alert_lock(kind, day), "alerts", ALERT_CLAIM_SECONDS)
        except LockHeld:
            return False
        return True

    def release_alert(self, kind: str, day: date) -> None:
        self.release_lock(_alert_lock(kind, day), "alerts")

    def recent_runs(self, limit: int = 20) -> list[RunRow]:
        """The latest send runs, newest first, as `digest runs` shows them: a run still
        marked running whose lock has lapsed (or was taken over) was killed, and is
        shown as interrupted."""
        return self._runs(runs.select().order_by(runs.c.id.desc()).limit(limit), shown=True)

    def runs_of(self, edition_id: str) -> list[RunRow]:
        """Every run of an edition, oldest first."""
        return self._runs(runs.select().where(runs.c.edition_id == edition_id).order_by(runs.c.id))

    def _runs(self, query: sa.Select, *, shown: bool = False) -> list[RunRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            live = sa.select(locks.c.name, locks.c.acquired_at).where(
                locks.c.expires_at >= now_utc()
            )
            held = {name: aware(acquired) for name, acquired in conn.execute(live)} if shown else {}
        return [
            record(
                RunRow,
                r,
                status=_shown_status(r, held) if shown else RunStatus(r.status),
                report=json.loads(r.report),
            )
            for r in rows
        ]


ALERT_CLAIM_SECONDS = 2 * 24 * 3600


def send_lock(edition_id: str, shard: object | None = None) -> str:
    """The name of the lock a run of this edition (and shard) holds while sending."""
    return f"send {edition_id}" + (f" shard {shard}" if shard else "")


def _alert_lock(kind: str, day: date) -> str:
    return f"alert {kind} {day.isoformat()}"


def _shown_status(row: sa.Row, held: dict[str, datetime | None]) -> RunStatus:
    """A run still marked running whose send lock has lapsed, or was taken by a later run,
    was killed: it is shown as interrupted."""
    status = RunStatus(row.status)
    if status is not RunStatus.running:
        return status
    acquired = held.get(send_lock(row.edition_id, row.shard))
    started = aware(row.started_at)
    if acquired is None or (started is not None and acquired > started):
        return RunStatus.interrupted
    return status


# Built once: recording an outcome is on the path of every message sent.
_OUTCOME_UPDATE = (
    deliveries.update()
    .where(
        deliveries.c.edition_id == sa.bindparam("b_edition"),
        deliveries.c.email == sa.bindparam("b_email"),
    )
    .values(
        state=sa.bindparam("b_state"),
        attempts=sa.bindparam("b_attempts"),
        last_error=sa.bindparam("b_error"),
        updated_at=sa.bindparam("b_stamp"),
    )
)


def _record_outcomes(
    conn: sa.Connection, edition_id: str, outcomes: list[Outcome], bounce_threshold: int
) -> list[str]:
    if not outcomes:
        return []
    stamp = now_utc()
    bounced = [o.email for o in outcomes if o.bounce]
    newly_bounced: list[str] = []
    with conn.begin():
        conn.execute(
            _OUTCOME_UPDATE,
            [
                {
                    "b_edition": edition_id,
                    "b_email": o.email,
                    "b_state": o.state.value,
                    "b_attempts": o.attempts,
                    "b_error": o.error,
                    "b_stamp": stamp,
                }
                for o in outcomes
            ],
        )
        if bounced:
            conn.execute(
                subscribers.update()
                .where(subscribers.c.email.in_(bounced))
                .values(consecutive_bounces=subscribers.c.consecutive_bounces + 1)
            )
            over = sa.and_(
                subscribers.c.email.in_(bounced),
                subscribers.c.status == SubscriberStatus.active.value,
                subscribers.c.consecutive_bounces >= bounce_threshold,
            )
            newly_bounced = list(conn.execute(sa.select(subscribers.c.email).where(over)).scalars())
            if newly_bounced:
                conn.execute(
                    subscribers.update()
                    .where(over)
                    .values(status=SubscriberStatus.bounced.value, updated_at=stamp)
                )
    return newly_bounced
