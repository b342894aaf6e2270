"""The tables, as SQLAlchemy Core metadata: what the repositories query and the
migrations' environment compares against. A change here needs a migration in
digest/migrations/versions/."""

from __future__ import annotations

import sqlalchemy as sa

from digest.models import new_public_id

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
    # Opaque id carried by the subscriber's links instead of the address.
    sa.Column("public_id", sa.String(32), nullable=False, default=new_public_id),
    # Nothing is sent before this time: the subscriber paused from their preferences.
    sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("public_id", name="uq_subscribers_public_id"),
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
