"""The database: subscribers, feeds and what collection must remember.

SQLAlchemy Core over SQLite by default; any SQLAlchemy URL works, and
PostgreSQL is tested. Tables are created on first use.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError

from digest.models import DigestError, Edition, MailFormat, Subscriber, SubscriberStatus

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
    # Opaque id carried by the subscriber's links instead of the address (0003).
    sa.Column(
        "public_id",
        sa.String(32),
        nullable=False,
        unique=True,
        default=lambda: secrets.token_urlsafe(16),
    ),
    # No digest is sent before this time: the subscriber paused from their preferences.
    sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
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
    # False for feeds only named in settings: their health is kept, they are not listed.
    sa.Column("listed", sa.Boolean, nullable=False, server_default=sa.true()),
)

# When an article was first seen: the time of undated items, so each appears
# in exactly one edition.
seen_articles = sa.Table(
    "seen_articles",
    metadata,
    sa.Column("key", sa.String(2000), primary_key=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
)

# The last parsed entries of each feed (JSON), so a 304 Not Modified still
# contributes its articles without the body being fetched or parsed again.
feed_cache = sa.Table(
    "feed_cache",
    metadata,
    sa.Column("feed_url", sa.String(2000), primary_key=True),
    sa.Column("title", sa.String(500), nullable=False, server_default=""),
    sa.Column("entries", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
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


# Delivery states meaning the subscriber has all they will get of an edition.
HAS_EDITION = ("sent", "skipped")


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


@dataclass(slots=True)
class FeedOutcome:
    """One feed's fetch, as collection records it: health, validators and parsed entries."""

    url: str
    title: str = ""
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    entries_json: str | None = None  # None: keep the cached entries (304, or a failure)


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
                "DIGEST_DATABASE_URL is not a database URL; "
                "use e.g. sqlite:///digest.db or postgresql+psycopg://host/db"
            ) from None
        except OperationalError as exc:
            raise DigestError(
                f"cannot open the database {_redact(url)}: {exc.orig}; "
                "check DIGEST_DATABASE_URL and that the server is running"
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def describe(self) -> str:
        """The database URL with any password hidden, for messages and logs."""
        return _redact(self.url)

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
                query = query.where(_with_status(status))
            query = query.order_by(subscribers.c.id).limit(batch)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for row in rows:
                yield _subscriber_from_row(row)
            last_id = rows[-1].id

    def upsert_subscribers(
        self, rows: Iterable[dict], *, default_timezone: str = "UTC", resubscribe: bool = False
    ) -> UpsertCounts:
        """Add or update many subscribers in one transaction, a few statements in all.

        Each row holds `email` (normalised) and any other subscriber columns,
        already validated; columns a row leaves out keep their stored value (or
        the default for a new subscriber). `updated_at` changes only on rows
        that really change. Someone who unsubscribed stays unsubscribed unless
        `resubscribe` is given: an old list must not undo their choice.
        """
        rows = list(rows)
        counts = UpsertCounts()
        stamp = now_utc()
        with self.engine.begin() as conn:
            existing: dict[str, dict] = {}
            emails = [r["email"] for r in rows]
            for start in range(0, len(emails), 500):
                query = subscribers.select().where(
                    subscribers.c.email.in_(emails[start : start + 500])
                )
                existing.update({m["email"]: dict(m) for m in conn.execute(query).mappings()})
            inserts, updates = [], []
            for row in rows:
                values = _subscriber_values(row)
                current = existing.get(row["email"])
                if current is None:
                    new = {**_NEW_SUBSCRIBER, "timezone": default_timezone, **values}
                    new.setdefault("created_at", stamp)
                    new.setdefault("updated_at", new["created_at"])
                    inserts.append(new)
                    counts.added += 1
                    continue
                values.pop("created_at", None)
                values.pop("updated_at", None)
                if (
                    current["status"] == SubscriberStatus.unsubscribed
                    and values.get("status", SubscriberStatus.unsubscribed.value)
                    != SubscriberStatus.unsubscribed
                    and not resubscribe
                ):
                    del values["status"]
                    counts.kept_unsubscribed += 1
                merged = {**current, **values}
                if merged == current:
                    counts.unchanged += 1
                    continue
                updates.append(
                    {"b_email": row["email"], **{f"b_{c}": merged[c] for c in SUBSCRIBER_FIELDS}}
                )
                counts.updated += 1
            if inserts:
                conn.execute(subscribers.insert(), inserts)
            if updates:
                statement = (
                    subscribers.update()
                    .where(subscribers.c.email == sa.bindparam("b_email"))
                    .values(
                        {
                            **{c: sa.bindparam(f"b_{c}") for c in SUBSCRIBER_FIELDS},
                            "updated_at": stamp,
                        }
                    )
                )
                conn.execute(statement, updates)
        return counts

    def set_subscriber_status(self, email: str, status: SubscriberStatus) -> Subscriber | None:
        """Set the status (a no-op if it already is); None if there is no such subscriber."""
        email = email.strip().lower()
        with self.engine.begin() as conn:
            conn.execute(
                subscribers.update()
                .where(subscribers.c.email == email, subscribers.c.status != status.value)
                .values(status=status.value, updated_at=now_utc())
            )
        return self.get_subscriber(email)

    def update_subscriber(self, sub: Subscriber) -> Subscriber | None:
        """Store a subscriber's preferences; None if there is no such subscriber.

        Status is left alone: an unsubscribe or bounce recorded while the
        preferences page was open must not be undone by saving it.
        """
        email = sub.email.strip().lower()
        values = _subscriber_row(sub.model_copy(update={"email": email}))
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
        return self.get_subscriber(email)

    # --- Web edition and subscriber links (issue 15) ------------------------------
    # What `digest serve` needs beyond the above; kept together to move as one block.

    def subscriber_by_public_id(self, public_id: str) -> Subscriber | None:
        """The subscriber a link's opaque id names, whatever their address is now."""
        with self.engine.connect() as conn:
            row = conn.execute(
                subscribers.select().where(subscribers.c.public_id == public_id)
            ).first()
        return _subscriber_from_row(row) if row else None

    def resubscribe(self, email: str) -> Subscriber | None:
        """Active again, from 'unsubscribed' only: a bounced address stays bounced."""
        email = email.strip().lower()
        with self.engine.begin() as conn:
            conn.execute(
                subscribers.update()
                .where(
                    subscribers.c.email == email,
                    subscribers.c.status == SubscriberStatus.unsubscribed.value,
                )
                .values(status=SubscriberStatus.active.value, updated_at=now_utc())
            )
        return self.get_subscriber(email)

    def pause_subscriber(self, email: str, until: datetime | None) -> Subscriber | None:
        """Send nothing to the subscriber before `until` (None: resume now)."""
        email = email.strip().lower()
        with self.engine.begin() as conn:
            conn.execute(
                subscribers.update()
                .where(subscribers.c.email == email)
                .values(paused_until=until, updated_at=now_utc())
            )
        return self.get_subscriber(email)

    def edition_ids(self, prefix: str, limit: int = 100) -> list[str]:
        """Ids of the stored editions starting with `prefix`, newest date first."""
        query = (
            sa.select(editions.c.id)
            .where(editions.c.id.startswith(prefix, autoescape=True))
            .order_by(editions.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    # --- end of the web block ------------------------------------------------------

    # Feeds

    def add_feed(self, url: str, title: str = "") -> None:
        """List a feed; one seen before only through DIGEST_FEEDS keeps its health record."""
        with self.engine.begin() as conn:
            row = conn.execute(feeds.select().where(feeds.c.url == url)).first()
            if row is not None and row.listed:
                raise DigestError(f"feed {url} is already listed")
            if row is None:
                conn.execute(
                    feeds.insert().values(url=url, title=title, listed=True, added_at=now_utc())
                )
            else:
                values = {"listed": True, "title": title} if title else {"listed": True}
                conn.execute(feeds.update().where(feeds.c.url == url).values(**values))

    def remove_feed(self, url: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(feeds.delete().where(feeds.c.url == url)).rowcount > 0

    def feed_urls(self) -> list[str]:
        with self.engine.connect() as conn:
            query = sa.select(feeds.c.url).where(feeds.c.listed).order_by(feeds.c.id)
            return list(conn.execute(query).scalars())

    def feed_rows(self, *, include_unlisted: bool = False) -> list[dict]:
        """Listed feeds with their health; `include_unlisted` adds feeds named only in settings."""
        query = feeds.select().order_by(feeds.c.id)
        if not include_unlisted:
            query = query.where(feeds.c.listed)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {k: (_aware(v) if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows
        ]

    def record_feed_outcomes(self, outcomes: Iterable[FeedOutcome]) -> dict[str, int]:
        """Remember each feed's health, validators and entries in one transaction.

        Returns each feed's consecutive failures after this run.
        """
        stamp = now_utc()
        failures: dict[str, int] = {}
        with self.engine.begin() as conn:
            for out in outcomes:
                row = conn.execute(feeds.select().where(feeds.c.url == out.url)).first()
                if row is None:
                    # Named only in DIGEST_FEEDS or --feeds: health is kept, but it is not
                    # listed, so it is not fetched once the setting no longer names it.
                    conn.execute(
                        _insert_ignoring_duplicates(conn, feeds).values(
                            url=out.url, title="", listed=False, added_at=stamp
                        )
                    )
                count = row.consecutive_failures if row is not None else 0
                values: dict = {"last_error": out.error}
                if out.error is None:
                    count = 0
                    values.update(last_success=stamp, consecutive_failures=0)
                    if out.title:
                        values["title"] = out.title[:500]
                else:
                    count += 1
                    values["consecutive_failures"] = count
                if out.entries_json is not None:
                    # Validators are only worth sending while the entries they vouch for exist.
                    values.update(etag=out.etag, last_modified=out.last_modified)
                    conn.execute(feed_cache.delete().where(feed_cache.c.feed_url == out.url))
                    conn.execute(
                        feed_cache.insert().values(
                            feed_url=out.url,
                            title=out.title[:500],
                            entries=out.entries_json,
                            updated_at=stamp,
                        )
                    )
                conn.execute(feeds.update().where(feeds.c.url == out.url).values(**values))
                failures[out.url] = count
        return failures

    def feed_validators(self, urls: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
        """(ETag, Last-Modified) of each feed whose parsed entries are cached."""
        wanted = set(urls)
        query = sa.select(feeds.c.url, feeds.c.etag, feeds.c.last_modified).join(
            feed_cache, feed_cache.c.feed_url == feeds.c.url
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {
            r.url: (r.etag, r.last_modified)
            for r in rows
            if r.url in wanted and (r.etag or r.last_modified)
        }

    def cached_feed(self, url: str) -> tuple[str, str] | None:
        """(title, entries JSON) last parsed from a feed, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(feed_cache.c.title, feed_cache.c.entries).where(
                    feed_cache.c.feed_url == url
                )
            ).first()
        return (row.title, row.entries) if row else None

    # Articles

    def first_seen(self, keys: Iterable[str], now: datetime) -> dict[str, datetime]:
        """Return when each key was first seen, recording `now` for new ones."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        # Insert-if-absent, then read back: a concurrent run recording the same key
        # first wins, and both runs then agree on its time.
        with self.engine.begin() as conn:
            conn.execute(
                _insert_ignoring_duplicates(conn, seen_articles),
                [{"key": k, "first_seen": now} for k in keys],
            )
        found: dict[str, datetime] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                rows = conn.execute(
                    sa.select(seen_articles.c.key, seen_articles.c.first_seen).where(
                        seen_articles.c.key.in_(chunk)
                    )
                )
                found.update({k: _aware(t) for k, t in rows})  # type: ignore[misc]
        return {k: found.get(k, now) for k in keys}

    # Editions: built once, reused by reruns and by every worker

    def save_edition(self, edition: Edition) -> None:
        """Store a built edition; the first one stored for an id is the one kept."""
        with self.engine.begin() as conn:
            conn.execute(
                _insert_ignoring_duplicates(conn, editions).values(
                    id=edition.id, created_at=now_utc(), payload=edition.model_dump_json()
                )
            )

    def load_edition(self, edition_id: str) -> Edition | None:
        with self.engine.connect() as conn:
            payload = conn.execute(
                sa.select(editions.c.payload).where(editions.c.id == edition_id)
            ).scalar()
        return Edition.model_validate_json(payload) if payload else None

    # Sending: deliveries, locks and runs

    def count_subscribers(
        self,
        status: SubscriberStatus | None = None,
        where: Callable[[Subscriber], bool] | None = None,
    ) -> int:
        """How many subscribers (with this status, and for whom `where` holds)."""
        if where is not None:
            return sum(1 for sub in self.iter_subscribers(status) if where(sub))
        query = sa.select(sa.func.count()).select_from(subscribers)
        if status is not None:
            query = query.where(_with_status(status))
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

    def undelivered_count(
        self, edition_id: str, where: Callable[[Subscriber], bool] | None = None
    ) -> int:
        """Active subscribers (for whom `where` holds) who do not have this edition.

        A subscriber skipped because nothing matched their topics has all they asked for.
        """
        if where is not None:
            missing = 0
            chosen = (s.email for s in self.iter_subscribers(SubscriberStatus.active) if where(s))
            while batch := list(itertools.islice(chosen, 500)):
                rows = self.delivery_rows(edition_id, batch)
                missing += sum(
                    1 for e in batch if e not in rows or rows[e].state not in HAS_EDITION
                )
            return missing
        done = sa.select(deliveries.c.email).where(
            deliveries.c.edition_id == edition_id, deliveries.c.state.in_(HAS_EDITION)
        )
        query = (
            sa.select(sa.func.count())
            .select_from(subscribers)
            .where(_with_status(SubscriberStatus.active), subscribers.c.email.not_in(done))
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def record_skipped(self, edition_id: str, emails: list[str]) -> None:
        """Remember subscribers who get nothing of this edition, so reruns skip them too."""
        if not emails:
            return
        stamp = now_utc()
        with self.engine.begin() as conn:
            conn.execute(
                _insert_ignoring_duplicates(conn, deliveries),
                [
                    {
                        "edition_id": edition_id,
                        "email": email,
                        "state": "skipped",
                        "attempts": 0,
                        "updated_at": stamp,
                    }
                    for email in emails
                ],
            )

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

    def start_run(self, edition_id: str, shard: str | None = None) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                runs.insert().values(
                    edition_id=edition_id, started_at=now_utc(), status="running", shard=shard
                )
            )
        return result.inserted_primary_key[0]  # type: ignore[index]

    def finish_run(self, run_id: int, status: str, report: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(finished_at=now_utc(), status=status, report=json.dumps(report))
            )

    def recent_runs(self, limit: int = 20) -> list[dict]:
        """The latest send runs, newest first, with their stored reports."""
        with self.engine.connect() as conn:
            rows = conn.execute(runs.select().order_by(runs.c.id.desc()).limit(limit)).all()
        return [
            {
                "id": r.id,
                "edition_id": r.edition_id,
                "shard": r.shard,
                "status": r.status,
                "started_at": _aware(r.started_at),
                "finished_at": _aware(r.finished_at),
                "report": json.loads(r.report),
            }
            for r in rows
        ]

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


def _with_status(status: SubscriberStatus) -> sa.ColumnElement[bool]:
    """Rows with this status; 'active' leaves out subscribers who paused their digest."""
    clause = subscribers.c.status == status.value
    if status is SubscriberStatus.active:
        paused = subscribers.c.paused_until
        clause = sa.and_(clause, sa.or_(paused.is_(None), paused <= now_utc()))
    return clause


def _insert_ignoring_duplicates(conn: sa.Connection, table: sa.Table) -> sa.Insert:
    """INSERT that skips rows whose key exists (SQLite and PostgreSQL: ON CONFLICT DO NOTHING)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


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


@dataclass
class UpsertCounts:
    """What a bulk upsert of subscribers did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_unsubscribed: int = 0


# A subscriber's fields besides the address, as CSV columns and the table's columns.
SUBSCRIBER_FIELDS = (
    "name",
    "status",
    "timezone",
    "delivery_hour",
    "format",
    "topics_include",
    "topics_exclude",
)
_NEW_SUBSCRIBER = {
    "name": "",
    "status": SubscriberStatus.active.value,
    "delivery_hour": None,
    "format": MailFormat.html.value,
    "topics_include": "[]",
    "topics_exclude": "[]",
}


def _subscriber_values(row: dict) -> dict:
    """Column values from a validated import row (enums to text, topics to JSON)."""
    values = {}
    for key, value in row.items():
        if key in ("topics_include", "topics_exclude"):
            value = json.dumps(list(value))
        elif isinstance(value, StrEnum):
            value = value.value
        values[key] = value
    return values


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
        public_id=row.public_id,
        paused_until=_aware(row.paused_until),
    )
