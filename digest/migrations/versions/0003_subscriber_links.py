"""Subscribers: an opaque public id for their links, and a pause.

Links in messages carry `public_id` instead of the address, so they leak
nothing and survive a change of address. Existing rows get a random id here,
before the column becomes required and unique as digest/db/schema.py has it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from digest.db import schema
from digest.models import new_public_id

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UNIQUE = "uq_subscribers_public_id"


def upgrade() -> None:
    public_id = schema.subscribers.c.public_id
    column = public_id._copy()
    column.nullable = True  # until every existing row has one
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(column)
        batch.add_column(schema.subscribers.c.paused_until._copy())
    conn = op.get_bind()
    table = sa.table("subscribers", sa.column("id", sa.Integer), sa.column("public_id"))
    ids = conn.execute(sa.select(table.c.id).where(table.c.public_id.is_(None))).scalars().all()
    if ids:
        conn.execute(
            table.update().where(table.c.id == sa.bindparam("b_id")),
            [{"b_id": i, "public_id": new_public_id()} for i in ids],
        )
    with op.batch_alter_table("subscribers") as batch:
        batch.alter_column("public_id", existing_type=public_id.type, nullable=False)
        batch.create_unique_constraint(UNIQUE, ["public_id"])


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_constraint(UNIQUE, type_="unique")
        batch.drop_column("paused_until")
        batch.drop_column("public_id")
