"""Feed cache (the last parsed entries of each feed, reused on 304); feeds.listed.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from digest.db import schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feeds", schema.feeds.c.listed._copy())
    op.create_table("feed_cache", *(c._copy() for c in schema.feed_cache.columns))


def downgrade() -> None:
    op.drop_table("feed_cache")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("listed")
