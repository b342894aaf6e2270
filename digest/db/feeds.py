"""What collection must remember between runs: the feeds and their health, each
feed's last parsed entries with the validators that vouch for them, and when
each article was first seen."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from digest.db._sql import aware, chunks, insert_ignoring_duplicates, now_utc, record
from digest.db.schema import feed_cache, feeds, seen_articles
from digest.errors import DigestError


@dataclass(slots=True)
class FeedOutcome:
    """One feed's fetch, as collection records it: health, validators and parsed entries."""

    url: str
    title: str = ""
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    entries_json: str | None = None  # None: keep the cached entries (304, or a failure)


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """A stored feed and how its fetches have gone."""

    url: str
    title: str
    listed: bool
    consecutive_failures: int
    last_error: str | None
    last_success: datetime | None
    added_at: datetime
    etag: str | None = None
    last_modified: str | None = None


class FeedRepository:
    """Feeds, the feed cache and first-seen times: what `collect` reads and records."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, url: str, title: str = "") -> None:
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

    def remove(self, url: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(feeds.delete().where(feeds.c.url == url)).rowcount > 0

    def urls(self) -> list[str]:
        """The listed feeds' URLs, in the order they were added."""
        with self.engine.connect() as conn:
            query = sa.select(feeds.c.url).where(feeds.c.listed).order_by(feeds.c.id)
            return list(conn.execute(query).scalars())

    def health(self, *, include_unlisted: bool = False) -> list[FeedHealth]:
        """Listed feeds with their health; `include_unlisted` adds feeds named only in settings."""
        query = feeds.select().order_by(feeds.c.id)
        if not include_unlisted:
            query = query.where(feeds.c.listed)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [record(FeedHealth, r) for r in rows]

    def record_outcomes(
        self, outcomes: Iterable[FeedOutcome], *, count_health: bool = True
    ) -> dict[str, int]:
        """Remember each feed's health, validators and entries in one transaction.

        With `count_health=False` (previews, dry runs, checks) health is left as it
        is and only the validators and entries are kept. Returns each feed's
        consecutive failures after this run.
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
                        insert_ignoring_duplicates(conn, feeds).values(
                            url=out.url, title="", listed=False, added_at=stamp
                        )
                    )
                count = row.consecutive_failures if row is not None else 0
                values: dict = {}
                if count_health and out.error is None:
                    count = 0
                    values.update(last_error=None, last_success=stamp, consecutive_failures=0)
                    if out.title:
                        values["title"] = out.title[:500]
                elif count_health:
                    count += 1
                    values.update(last_error=out.error, consecutive_failures=count)
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
                if values:
                    conn.execute(feeds.update().where(feeds.c.url == out.url).values(**values))
                failures[out.url] = count
        return failures

    def validators(self, urls: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
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

    def cached(self, url: str) -> tuple[str, str] | None:
        """(title, entries JSON) last parsed from a feed, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(feed_cache.c.title, feed_cache.c.entries).where(
                    feed_cache.c.feed_url == url
                )
            ).first()
        return (row.title, row.entries) if row else None

    def first_seen(self, keys: Iterable[str], now: datetime) -> dict[str, datetime]:
        """Return when each article key was first seen, recording `now` for new ones."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        # Insert-if-absent, then read back: a concurrent run recording the same key
        # first wins, and both runs then agree on its time.
        with self.engine.begin() as conn:
            conn.execute(
                insert_ignoring_duplicates(conn, seen_articles),
                [{"key": k, "first_seen": now} for k in keys],
            )
        found: dict[str, datetime] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(keys):
                rows = conn.execute(
                    sa.select(seen_articles.c.key, seen_articles.c.first_seen).where(
                        seen_articles.c.key.in_(chunk)
                    )
                )
                found.update({k: aware(t) for k, t in rows})  # type: ignore[misc]
        return {k: found.get(k, now) for k in keys}
