"""Built editions, stored whole so reruns and every worker send the same one."""

from __future__ import annotations

import sqlalchemy as sa

from digest.db._sql import insert_ignoring_duplicates, now_utc
from digest.db.schema import editions
from digest.models import Edition


class EditionRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def save(self, edition: Edition) -> None:
        """Store a built edition; the first one stored for an id is the one kept."""
        with self.engine.begin() as conn:
            conn.execute(
                insert_ignoring_duplicates(conn, editions).values(
                    id=edition.id, created_at=now_utc(), payload=edition.model_dump_json()
                )
            )

    def load(self, edition_id: str) -> Edition | None:
        with self.engine.connect() as conn:
            payload = conn.execute(
                sa.select(editions.c.payload).where(editions.c.id == edition_id)
            ).scalar()
        return Edition.model_validate_json(payload) if payload else None

    def ids(self, prefix: str, limit: int = 100) -> list[str]:
        """Ids of the stored editions starting with `prefix`, newest date first."""
        query = (
            sa.select(editions.c.id)
            .where(editions.c.id.startswith(prefix, autoescape=True))
            .order_by(editions.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())
