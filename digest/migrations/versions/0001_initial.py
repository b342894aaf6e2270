"""Initial schema: subscribers, feeds, seen articles, editions, deliveries, runs, locks.

The tables are those of digest/db/schema.py, less what later migrations add.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from digest.db import schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Added by later migrations: 0001 creates each table without them.
LATER = {"feeds": ("listed",), "subscribers": ("public_id", "paused_until")}


def upgrade() -> None:
    bind = op.get_bind()
    for table in (
        schema.subscribers,
        schema.feeds,
        schema.seen_articles,
        schema.editions,
        schema.deliveries,
        schema.runs,
        schema.locks,
    ):
        as_created(table, LATER.get(table.name, ())).create(bind)


def as_created(table: sa.Table, without: tuple[str, ...] = ()) -> sa.Table:
    """`table` as digest/db/schema.py defines it, less the columns named in `without`.

    A later migration that changes (not only adds) a column of one of these tables
    must first write that table out here as it was.
    """
    columns = [c._copy() for c in table.columns if c.name not in without]
    indexes = [
        sa.Index(index.name, *(c.name for c in index.columns))
        for index in table.indexes
        if not (len(index.columns) == 1 and next(iter(index.columns)).index)
    ]
    return sa.Table(table.name, sa.MetaData(), *columns, *indexes)


def downgrade() -> None:
    for table in ("locks", "runs", "deliveries", "editions", "seen_articles", "feeds"):
        op.drop_table(table)
    op.drop_table("subscribers")
