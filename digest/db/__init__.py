"""The database: one small repository per kind of record, over one engine.

    Database(url)
     ├── .subscribers   SubscriberRepository  (db/subscribers.py)  who receives the digest
     ├── .feeds         FeedRepository        (db/feeds.py)        feeds, feed cache, first seen
     ├── .editions      EditionRepository     (db/editions.py)     built editions, reused
     └── .ledger        Ledger                (db/ledger.py)       deliveries, runs, locks

Tables live in db/schema.py, and migrations in digest/migrations/. Each caller
takes only the repository it needs: the web app `subscribers`, collection `feeds`.
This package stores and reads; what may change and when is decided by its callers.
SQLAlchemy Core over SQLite by default; any SQLAlchemy URL works, and PostgreSQL
is tested. The schema is created on first use of an empty database.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, OperationalError

from digest.db.editions import EditionRepository
from digest.db.feeds import FeedRepository
from digest.db.ledger import Ledger
from digest.db.subscribers import SubscriberRepository
from digest.errors import DigestError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class Database:
    """The engine and its repositories; one instance per process."""

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
                f"cannot open the database {redact(url)}: {exc.orig}; "
                "check DIGEST_DATABASE_URL and that the server is running"
            ) from None
        self.subscribers = SubscriberRepository(self.engine)
        self.feeds = FeedRepository(self.engine)
        self.editions = EditionRepository(self.engine)
        self.ledger = Ledger(self.engine, self.subscribers)

    def close(self) -> None:
        self.engine.dispose()

    def describe(self) -> str:
        """The database URL with any password hidden, for messages and logs."""
        return redact(self.url)

    def revisions(self) -> tuple[str | None, str]:
        """The database's schema revision and the one this version of digest needs."""
        return schema_revisions(self.engine)

    def upgrade(self) -> tuple[str | None, str]:
        """Apply every pending migration; rows are kept. Returns (before, after)."""
        return upgrade_schema(self.engine)


def _alembic_config(connection: sa.Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def schema_revisions(engine: sa.Engine) -> tuple[str | None, str]:
    """The database's schema revision and the one this version of digest needs."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        head = ScriptDirectory.from_config(_alembic_config(conn)).get_current_head()
    return current, head  # type: ignore[return-value]


def upgrade_schema(engine: sa.Engine) -> tuple[str | None, str]:
    """Apply every pending migration; rows are kept. Returns (before, after)."""
    from alembic import command

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
            folder = Path(path).expanduser().parent
            if not folder.exists():
                # Settings refuse a missing directory outside the working tree
                # (config.database_url_problem); one inside it is made, and said so.
                log.info("creating the directory %s for the database", folder)
                folder.mkdir(parents=True, exist_ok=True)
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


def redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


__all__ = [
    "Database",
    "EditionRepository",
    "FeedRepository",
    "Ledger",
    "SubscriberRepository",
    "make_engine",
    "schema_revisions",
    "upgrade_schema",
]
