"""Subscribers: an opaque public id for their links, and a pause.

Links in messages carry `public_id` instead of the address, so they leak
nothing and survive a change of address. Existing rows get a random id here.

Revision ID: 0003
Revises: 0002
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("public_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True))
    conn = op.get_bind()
    table = sa.table("subscribers", sa.column("id", sa.Integer), sa.column("public_id"))
    ids = conn.execute(sa.select(table.c.id).where(table.c.public_id.is_(None))).scalars().all()
    if ids:
        conn.execute(
            table.update().where(table.c.id == sa.bindparam("b_id")),
            [{"b_id": i, "public_id": secrets.token_urlsafe(16)} for i in ids],
        )
    with op.batch_alter_table("subscribers") as batch:
        batch.alter_column("public_id", existing_type=sa.String(32), nullable=False)
        batch.create_unique_constraint("uq_subscribers_public_id", ["public_id"])


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_constraint("uq_subscribers_public_id", type_="unique")
        batch.drop_column("paused_until")
        batch.drop_column("public_id")
