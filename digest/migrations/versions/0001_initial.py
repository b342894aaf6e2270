"""Initial schema: subscribers, feeds, seen articles, editions, deliveries, runs, locks.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscribers",
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
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False, unique=True),
        sa.Column("title", sa.String(500), nullable=False, server_default=""),
        sa.Column("etag", sa.String(500), nullable=True),
        sa.Column("last_modified", sa.String(100), nullable=True),
        sa.Column("last_success", TZ, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("added_at", TZ, nullable=False),
    )
    op.create_table(
        "seen_articles",
        sa.Column("key", sa.String(2000), primary_key=True),
        sa.Column("first_seen", TZ, nullable=False),
    )
    op.create_table(
        "editions",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("edition_id", sa.String(200), primary_key=True),
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("message_id", sa.String(500), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_deliveries_edition_state", "deliveries", ["edition_id", "state"])
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("edition_id", sa.String(200), nullable=False, index=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("shard", sa.String(20), nullable=True),
        sa.Column("report", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_table(
        "locks",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("acquired_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for table in ("locks", "runs", "deliveries", "editions", "seen_articles", "feeds"):
        op.drop_table(table)
    op.drop_table("subscribers")
