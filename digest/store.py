"""The database: subscribers, feeds and what collection must remember.

SQLAlchemy Core over SQLite by default; any SQLAlchemy URL works, and
PostgreSQL is tested. Tables are created on first use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError

from digest.models import DigestError, MailFormat, Subscriber, SubscriberStatus

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

metadata = sa.MetaData()

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("status", sa.String(20), nullable=False, server_default="active"),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("delivery_hour", sa.Integer, nullable=True),
    sa.Column("format", sa.String(10), nullable=False, server_default="html"),
    sa.Column("topics_include", sa.Text, nullable=False, server_default="[]"),
    sa.Column("topics_exclude", sa.Text, nullable=False, server_default="[]"),
    sa.Column("consecutive_bounces", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

feeds = sa.Table(
    "feeds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False, unique=True),
    sa.Column("title", sa.String(500), nullable=False, server_default=""),
    sa.Column("etag", sa.String(500), nullable=True),
    sa.Column("last_modified", sa.String(100), nullable=True),
    sa.Column("last_success", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
)

# When an article was first seen: the time of undated items, so each appears
# in exactly one edition.
seen_articles = sa.Table(
    "seen_articles",
    metadata,
    sa.Column("key", sa.String(2000), primary_key=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
)


# Each built edition, stored so reruns and workers reuse it instead of fetching again.
editions = sa.Table(
    "editions",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)

# One row per subscriber and edition: what makes sending exactly-once and resumable.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("edition_id", sa.String(200), primary_key=True),
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("message_id", sa.String(500), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_deliveries_edition_state", "edition_id", "state"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("edition_id", sa.String(200), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("shard", sa.String(20), nullable=True),
    sa.Column("report", sa.Text, nullable=False, server_default="{}"),
)

# Named locks with an owner and an expiry, so concurrent runs of one edition are refused
# and a crashed holder does not block forever.
locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


class LockHeld(DigestError):
    """Another run holds the lock (for example, is sending the same edition)."""


@dataclass(frozen=True)
class DeliveryRow:
    """Where one subscriber's copy of one edition stands."""

    state: str  # sending (intent recorded), sent, failed (5xx: final), deferred (4xx: retry)
    message_id: str | None
    attempts: int


def now_utc() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def normalise_email(address: str) -> str:
    """Validate an address and return its normalised form, or raise DigestError."""
    try:
        valid = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise DigestError(f"invalid email address {address!r}: {exc}") from None
    # The local part is case-sensitive by the RFC but not in practice: treat
    # Ann@x and ann@x as one subscriber.
    return valid.normalized.lower()


class Store:
    """Database access for every stage; one instance per process."""

    def __init__(self, url: str, *, ensure_schema: bool = True) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
            if ensure_schema:
                _ensure_schema(self.engine)
        except ArgumentError:
            raise DigestError(
                f"DIGEST_DATABASE_URL: {url!r} is not a database URL; "
                "use e.g. sqlite:///digest.db or postgresql+psycopg://host/db"
            ) from None
        except OperationalError as exc:
            raise DigestError(
                f"cannot open the database {_redact(url)}: {exc.orig}; "
                "check DIGEST_DATABASE_URL and that the server is running"
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    # Subscribers

    def add_subscriber(self, sub: Subscriber) -> Subscriber:
        email = normalise_email(sub.email)
        stamp = now_utc()
        row = _subscriber_row(sub.model_copy(update={"email": email}))
        try:
            with self.engine.begin() as conn:
                conn.execute(subscribers.insert().values(**row, created_at=stamp, updated_at=stamp))
        except IntegrityError:
            raise DigestError(f"{email} is already subscribed") from None
        return self.get_subscriber(email)  # type: ignore[return-value]

    def get_subscriber(self, email: str) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                subscribers.select().where(subscribers.c.email == email.strip().lower())
            ).first()
        return _subscriber_from_row(row) if row else None

    def remove_subscriber(self, email: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                subscribers.delete().where(subscribers.c.email == email.strip().lower())
            )
        return result.rowcount > 0

    def iter_subscribers(
        self, status: SubscriberStatus | None = None, batch: int = 1000
    ) -> Iterator[Subscriber]:
        """Stream subscribers in id order, a batch at a time, so memory stays flat."""
        last_id = 0
        while True:
            query = subscribers.select().where(subscribers.c.id > last_id)
            if status is not None:
                query = query.where(subscribers.c.status == status.value)
            query = query.order_by(subscribers.c.id).limit(batch)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for row in rows:
                yield _subscriber_from_row(row)
            last_id = rows[-1].id

    # Feeds

    def add_feed(self, url: str, title: str = "") -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(feeds.insert().values(url=url, title=title, added_at=now_utc()))
        except IntegrityError:
            raise DigestError(f"feed {url} is already listed") from None

    def remove_feed(self, url: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(feeds.delete().where(feeds.c.url == url)).rowcount > 0

    def feed_urls(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(feeds.c.url).order_by(feeds.c.id)).scalars())

    def feed_rows(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(feeds.select().order_by(feeds.c.id)).mappings().all()
        return [
            {k: (_aware(v) if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows
        ]

    def record_feed_result(self, url: str, title: str, error: str | None) -> None:
        """Remember a feed's health; creates the row for feeds named only in settings."""
        stamp = now_utc()
        with self.engine.begin() as conn:
            row = conn.execute(feeds.select().where(feeds.c.url == url)).first()
            if row is None:
                conn.execute(feeds.insert().values(url=url, title=title, added_at=stamp))
                failures = 0
            else:
                failures = row.consecutive_failures
            values: dict = {"last_error": error}
            if error is None:
                values.update(last_success=stamp, consecutive_failures=0)
                if title:
                    values["title"] = title
            else:
                values["consecutive_failures"] = failures + 1
            conn.execute(feeds.update().where(feeds.c.url == url).values(**values))

    # Articles

    def first_seen(self, keys: Iterable[str], now: datetime) -> dict[str, datetime]:
        """Return when each key was first seen, recording `now` for new ones."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        found: dict[str, datetime] = {}
        with self.engine.begin() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                rows = conn.execute(
                    sa.select(seen_articles.c.key, seen_articles.c.first_seen).where(
                        seen_articles.c.key.in_(chunk)
                    )
                )
                found.update({k: _aware(t) for k, t in rows})  # type: ignore[misc]
            new = [{"key": k, "first_seen": now} for k in keys if k not in found]
            if new:
                conn.execute(seen_articles.insert(), new)
        return {k: found.get(k, now) for k in keys}

    # Sending: deliveries, locks and runs

    def count_subscribers(self, status: SubscriberStatus | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(subscribers)
        if status is not None:
            query = query.where(subscribers.c.status == status.value)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def delivery_rows(self, edition_id: str, emails: list[str]) -> dict[str, DeliveryRow]:
        """The delivery rows that exist for these subscribers and this edition."""
        found: dict[str, DeliveryRow] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(emails), 500):
                rows = conn.execute(
                    sa.select(
                        deliveries.c.email,
                        deliveries.c.state,
                        deliveries.c.message_id,
                        deliveries.c.attempts,
                    ).where(
                        deliveries.c.edition_id == edition_id,
                        deliveries.c.email.in_(emails[start : start + 500]),
                    )
                )
                found.update(
                    {r.email: DeliveryRow(r.state, r.message_id, r.attempts) for r in rows}
                )
        return found

    def record_sending(
        self, edition_id: str, new: list[tuple[str, str]], again: list[tuple[str, str]]
    ) -> None:
        """Record the intent to send (email, Message-ID) before anything goes out."""
        stamp = now_utc()
        with self.engine.begin() as conn:
            if new:
                conn.execute(
                    deliveries.insert(),
                    [
                        {
                            "edition_id": edition_id,
                            "email": email,
                            "state": "sending",
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
                        state="sending", message_id=sa.bindparam("b_message_id"), updated_at=stamp
                    ),
                    [{"b_email": e, "b_message_id": m} for e, m in again],
                )

    @contextmanager
    def outcome_writer(self) -> Iterator[Callable[[str, list[dict], int], list[str]]]:
        """`record_outcomes` over one held connection: a send run commits every few
        messages, and checking a connection out for each commit costs more than it."""
        with self.engine.connect() as conn:
            yield partial(_record_outcomes, conn)

    def record_outcomes(
        self, edition_id: str, outcomes: list[dict], bounce_threshold: int
    ) -> list[str]:
        """Record final outcomes: dicts of email, state, attempts, error, bounce.

        A 'bounce' (the address refused for good) adds one to the subscriber's
        consecutive bounces; reaching the threshold marks the subscriber bounced.
        Returns the addresses newly marked bounced. A delivery resets the count
        (`reset_bounces`, once per run rather than per message).
        """
        with self.engine.connect() as conn:
            return _record_outcomes(conn, edition_id, outcomes, bounce_threshold)

    def reset_bounces(self, edition_id: str) -> None:
        """Subscribers who received this edition have no consecutive bounces."""
        sent = sa.select(deliveries.c.email).where(
            deliveries.c.edition_id == edition_id, deliveries.c.state == "sent"
        )
        with self.engine.begin() as conn:
            conn.execute(
                subscribers.update()
                .where(subscribers.c.consecutive_bounces > 0, subscribers.c.email.in_(sent))
                .values(consecutive_bounces=0)
            )

    def undelivered_count(self, edition_id: str) -> int:
        """Active subscribers who do not have this edition."""
        sent = sa.select(deliveries.c.email).where(
            deliveries.c.edition_id == edition_id, deliveries.c.state == "sent"
        )
        query = (
            sa.select(sa.func.count())
            .select_from(subscribers)
            .where(
                subscribers.c.status == SubscriberStatus.active.value,
                subscribers.c.email.not_in(sent),
            )
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def delivery_states(self, edition_id: str) -> dict[str, int]:
        """How many deliveries of the edition are in each state."""
        query = (
            sa.select(deliveries.c.state, sa.func.count())
            .where(deliveries.c.edition_id == edition_id)
            .group_by(deliveries.c.state)
        )
        with self.engine.connect() as conn:
            return {state: n for state, n in conn.execute(query)}

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
                f"{name} is held by {row.owner} since {_aware(row.acquired_at):%Y-%m-%d %H:%M:%S}"
                f" UTC; if that run crashed, the lock expires at {_aware(row.expires_at):%H:%M:%S}"
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

    def start_run(self, edition_id: str) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                runs.insert().values(edition_id=edition_id, started_at=now_utc(), status="running")
            )
        return result.inserted_primary_key[0]  # type: ignore[index]

    def finish_run(self, run_id: int, status: str, report: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(finished_at=now_utc(), status=status, report=json.dumps(report))
            )

    def run_reports(self, edition_id: str) -> list[dict]:
        """Every run of an edition, oldest first, with its stored report."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                runs.select().where(runs.c.edition_id == edition_id).order_by(runs.c.id)
            ).all()
        return [
            {
                "id": r.id,
                "status": r.status,
                "started_at": _aware(r.started_at),
                "finished_at": _aware(r.finished_at),
                "report": json.loads(r.report),
            }
            for r in rows
        ]


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
    conn: sa.Connection, edition_id: str, outcomes: list[dict], bounce_threshold: int
) -> list[str]:
    if not outcomes:
        return []
    stamp = now_utc()
    bounced = [o["email"] for o in outcomes if o.get("bounce")]
    newly_bounced: list[str] = []
    with conn.begin():
        conn.execute(
            _OUTCOME_UPDATE,
            [
                {
                    "b_edition": edition_id,
                    "b_email": o["email"],
                    "b_state": o["state"],
                    "b_attempts": o["attempts"],
                    "b_error": o.get("error"),
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


def _alembic_config(connection: sa.Connection) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def schema_revisions(engine: sa.Engine) -> tuple[str | None, str]:
    """The database's schema revision and the one this version of digest needs."""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        head = ScriptDirectory.from_config(_alembic_config(conn)).get_current_head()
    return current, head  # type: ignore[return-value]


def upgrade_schema(engine: sa.Engine) -> tuple[str | None, str]:
    """Apply every pending migration; rows are kept. Returns (before, after)."""
    before, head = schema_revisions(engine)
    if before != head:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")
    return before, head


def _ensure_schema(engine: sa.Engine) -> None:
    """Create the schema in an empty database; refuse to run on an outdated one."""
    current, head = schema_revisions(engine)
    if current == head:
        return
    if current is None and not sa.inspect(engine).get_table_names():
        try:
            upgrade_schema(engine)
        except sa.exc.DatabaseError:
            # Another process created it at the same moment; fine if it is complete now.
            if schema_revisions(engine)[0] != head:
                raise
        return
    raise DigestError(
        f"the database schema is at revision {current or 'none'} but this version of digest "
        f"needs {head}: run `digest db upgrade` (it keeps every row)"
    )


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # Durable across a killed process (WAL); skips an fsync per commit, which
            # matters when every delivery is recorded as it happens.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def _subscriber_row(sub: Subscriber) -> dict:
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


def _subscriber_from_row(row: sa.Row) -> Subscriber:
    return Subscriber(
        email=row.email,
        name=row.name,
        status=SubscriberStatus(row.status),
        timezone=row.timezone,
        delivery_hour=row.delivery_hour,
        format=MailFormat(row.format),
        topics_include=json.loads(row.topics_include),
        topics_exclude=json.loads(row.topics_exclude),
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )
