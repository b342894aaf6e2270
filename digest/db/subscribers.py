"""The subscribers table: one `Subscriber` model in, one out.

Addresses arrive validated and normalised (digest.subscribers.parse_email);
look-ups ignore case and surrounding spaces because addresses are stored
lower-cased. Which changes are allowed (an unsubscribe is never undone by an
old list, say) is decided by the caller, not here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from digest import validate
from digest.db._sql import aware, chunks, now_utc
from digest.db.schema import subscribers
from digest.errors import DigestError, InvalidField
from digest.models import MailFormat, Subscriber, SubscriberStatus

log = logging.getLogger(__name__)

# Told about each stored record that cannot be used: (record id, address, why).
OnUnusable = Callable[[int, str, str], None]

# A subscriber's fields besides the address, as CSV columns and the table's columns.
FIELDS = (
    "name",
    "status",
    "timezone",
    "delivery_hour",
    "format",
    "topics_include",
    "topics_exclude",
)

# Stored rows as plain column dicts, handed to an upsert plan and taken back from it.
Columns = dict
UpsertPlan = Callable[[dict[str, Columns]], tuple[list[Columns], list[Columns]]]


class SubscriberRepository:
    """Add, find, change and stream subscribers."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def add(self, sub: Subscriber) -> Subscriber:
        sub = sub.model_copy(update={"email": _key(sub.email)})
        stamp = now_utc()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    subscribers.insert().values(
                        **_row(sub),
                        public_id=sub.public_id,
                        paused_until=sub.paused_until,
                        created_at=stamp,
                        updated_at=stamp,
                    )
                )
        except IntegrityError:
            raise DigestError(f"{sub.email} is already subscribed") from None
        return self.get(sub.email)  # type: ignore[return-value]

    def get(self, email: str) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                subscribers.select().where(subscribers.c.email == _key(email))
            ).first()
        return _from_row(row) if row else None

    def by_public_id(self, public_id: str) -> Subscriber | None:
        """The subscriber a link's opaque id names, whatever their address is now."""
        with self.engine.connect() as conn:
            row = conn.execute(
                subscribers.select().where(subscribers.c.public_id == public_id)
            ).first()
        return _from_row(row) if row else None

    def remove(self, email: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(subscribers.delete().where(subscribers.c.email == _key(email)))
        return result.rowcount > 0

    def iter(
        self,
        status: SubscriberStatus | None = None,
        batch: int = 1000,
        unusable: OnUnusable | None = None,
    ) -> Iterator[Subscriber]:
        """Stream subscribers in id order, a batch at a time, so memory stays flat.

        A stored record that cannot be used (an unknown time zone, broken topics) is
        left out and handed to `unusable` (by default: logged at debug level), so one
        bad row never stops a run.
        """
        last_id = 0
        while True:
            query = subscribers.select().where(subscribers.c.id > last_id)
            if status is not None:
                query = query.where(with_status(status))
            query = query.order_by(subscribers.c.id).limit(batch)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for row in rows:
                try:
                    sub = _from_row(row)
                except UnusableRecord as exc:
                    (unusable or _log_unusable)(row.id, row.email, str(exc))
                    continue
                yield sub
            last_id = rows[-1].id

    def count(
        self,
        status: SubscriberStatus | None = None,
        where: Callable[[Subscriber], bool] | None = None,
    ) -> int:
        """How many subscribers (with this status, and for whom `where` holds)."""
        if where is not None:
            return sum(1 for sub in self.iter(status) if where(sub))
        query = sa.select(sa.func.count()).select_from(subscribers)
        if status is not None:
            query = query.where(with_status(status))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def upsert(self, emails: list[str], plan: UpsertPlan) -> None:
        """Read the stored rows of `emails`, then write what `plan` makes of them, in one
        transaction: a few statements for any number of rows.

        `plan` gets {email: stored columns} and returns (rows to insert, rows to update),
        each a dict of columns (see `to_columns`); updated rows get a new `updated_at`.
        """
        stamp = now_utc()
        with self.engine.begin() as conn:
            existing: dict[str, Columns] = {}
            for chunk in chunks(emails):
                query = subscribers.select().where(subscribers.c.email.in_(chunk))
                existing.update({m["email"]: dict(m) for m in conn.execute(query).mappings()})
            inserts, updates = plan(existing)
            for row in inserts:
                row.setdefault("created_at", stamp)
                row.setdefault("updated_at", row["created_at"])
            if inserts:
                conn.execute(subscribers.insert(), inserts)
            if updates:
                statement = (
                    subscribers.update()
                    .where(subscribers.c.email == sa.bindparam("b_email"))
                    .values({**{c: sa.bindparam(f"b_{c}") for c in FIELDS}, "updated_at": stamp})
                )
                conn.execute(
                    statement,
                    [{"b_email": r["email"], **{f"b_{c}": r[c] for c in FIELDS}} for r in updates],
                )

    def set_status(
        self,
        email: str,
        status: SubscriberStatus,
        *,
        only_from: SubscriberStatus | None = None,
    ) -> Subscriber | None:
        """Set the status (a no-op if it already is, or if it is not `only_from` when that
        is given: checked in the same statement, so no change in between is undone);
        None if there is no such subscriber."""
        where = [subscribers.c.email == _key(email), subscribers.c.status != status.value]
        if only_from is not None:
            where.append(subscribers.c.status == only_from.value)
        with self.engine.begin() as conn:
            conn.execute(
                subscribers.update().where(*where).values(status=status.value, updated_at=now_utc())
            )
        return self.get(email)

    def pause(self, email: str, until: datetime | None) -> Subscriber | None:
        """Store the time before which nothing is sent (None: no pause); None if there is
        no such subscriber."""
        with self.engine.begin() as conn:
            conn.execute(
                subscribers.update()
                .where(subscribers.c.email == _key(email))
                .values(paused_until=until, updated_at=now_utc())
            )
        return self.get(email)

    def update(self, sub: Subscriber) -> Subscriber | None:
        """Store a subscriber's preferences; None if there is no such subscriber.

        Status is left alone: an unsubscribe or bounce recorded while the
        preferences page was open must not be undone by saving it.
        """
        email = _key(sub.email)
        values = _row(sub.model_copy(update={"email": email}))
        del values["status"]
        with self.engine.begin() as conn:
            current = (
                conn.execute(subscribers.select().where(subscribers.c.email == email))
                .mappings()
                .first()
            )
            if current is None:
                return None
            if any(current[k] != v for k, v in values.items()):
                conn.execute(
                    subscribers.update()
                    .where(subscribers.c.email == email)
                    .values(**values, updated_at=now_utc())
                )
        return self.get(email)


def with_status(status: SubscriberStatus) -> sa.ColumnElement[bool]:
    """Rows with this status; 'active' leaves out subscribers whose pause has not ended,
    so every query of who receives the digest skips them alike."""
    clause = subscribers.c.status == status.value
    if status is SubscriberStatus.active:
        paused = subscribers.c.paused_until
        clause = sa.and_(clause, sa.or_(paused.is_(None), paused <= now_utc()))
    return clause


def to_columns(values: Iterable[tuple[str, object]]) -> Columns:
    """Column values from parsed fields (enums to text, topics to JSON)."""
    columns = {}
    for key, value in values:
        if key in ("topics_include", "topics_exclude"):
            value = json.dumps(list(value))  # type: ignore[call-overload]
        elif isinstance(value, StrEnum):
            value = value.value
        columns[key] = value
    return columns


def _key(email: str) -> str:
    return email.strip().lower()


def _row(sub: Subscriber) -> Columns:
    return {
        "email": sub.email,
        "name": sub.name,
        "status": sub.status.value,
        "timezone": sub.timezone,
        "delivery_hour": sub.delivery_hour,
        "format": sub.format.value,
        "topics_include": json.dumps(sub.topics_include),
        "topics_exclude": json.dumps(sub.topics_exclude),
    }


class UnusableRecord(DigestError):
    """A stored subscriber row that breaks the rules user input is held to."""


def _log_unusable(record_id: int, _email: str, why: str) -> None:
    log.debug("subscriber record #%d cannot be used: %s", record_id, why)


def _from_row(row: sa.Row) -> Subscriber:
    """The row as a Subscriber, checked as strictly as user input (the database may have
    been edited by hand, or by an older version): UnusableRecord says what is wrong."""
    try:
        hour = row.delivery_hour
        if hour is not None and not 0 <= hour <= 23:
            raise InvalidField(f"delivery hour {hour} is not from 0 to 23")
        return Subscriber(
            email=row.email,
            name=row.name,
            status=SubscriberStatus(row.status),
            timezone=validate.time_zone(row.timezone),
            delivery_hour=hour,
            format=MailFormat(row.format),
            topics_include=_topics(row.topics_include),
            topics_exclude=_topics(row.topics_exclude),
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
            public_id=row.public_id,
            paused_until=aware(row.paused_until),
        )
    except (InvalidField, ValueError, TypeError) as exc:
        why = str(exc).splitlines()[0]
        raise UnusableRecord(
            f"subscriber record #{row.id}: {why}; fix it (`digest subscribers import` "
            "updates a row) or remove it"
        ) from None


def _topics(stored: str) -> list[str]:
    try:
        topics = json.loads(stored)
    except ValueError:
        raise InvalidField(f"stored topics {stored[:40]!r} are not a JSON list") from None
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise InvalidField(f"stored topics {stored[:40]!r} are not a list of words")
    return topics
