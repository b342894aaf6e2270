"""Feed cache (the last parsed entries of each feed, reused on 304); feeds.listed.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "feeds", sa.Column("listed", sa.Boolean, nullable=False, server_default=sa.true())
    )
    op.create_table(
        "feed_cache",
        sa.Column("feed_url", sa.String(2000), primary_key=True),
        sa.Column("title", sa.String(500), nullable=False, server_default=""),
        sa.Column("entries", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feed_cache")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("listed")
