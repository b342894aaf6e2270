"""Small helpers every repository shares: UTC times, chunked IN, insert-if-absent."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")

# Bound parameters per IN list: under every backend's limit, few round trips.
IN_CHUNK = 500


def now_utc() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """`values` a slice at a time, for `column.in_(chunk)` queries of any length."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def insert_ignoring_duplicates(conn: sa.Connection, table: sa.Table) -> sa.Insert:
    """INSERT that skips rows whose key exists (SQLite and PostgreSQL: ON CONFLICT DO NOTHING)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def record(cls: type[T], row: sa.Row, **converted: Any) -> T:
    """A dataclass `cls` from the row's columns of the same names, times made aware;
    `converted` gives the fields that need more than that."""
    values = row._mapping
    fields = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in converted:
            fields[field.name] = converted[field.name]
        else:
            value = values[field.name]
            fields[field.name] = aware(value) if isinstance(value, datetime) else value
    return cls(**fields)
