"""Subscriber records: validating each field, and CSV import and export.

The same field parsers serve the command line, the CSV import and the
preferences page, so a value accepted in one place is accepted in all.
An import is validated whole before anything is written: every bad row is
reported with its line number and reason, and the good rows are committed in
one transaction (or none are, unless the operator asks to skip the bad ones).
The rule of that upsert lives here too: an old list never undoes an unsubscribe.
Storage is digest.db.subscribers; the address and time-zone checks are digest.validate.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from digest import validate
from digest.db.subscribers import FIELDS, Columns, SubscriberRepository, to_columns
from digest.errors import DigestError, InvalidField
from digest.logs import subscriber_ref
from digest.models import MailFormat, Subscriber, SubscriberStatus
from digest.phrases import topic_problem

# Columns an import may name (only `email` is required) and an export writes.
CSV_COLUMNS = ("email", *FIELDS)
# Export adds the record's times, so export then import into an empty database is lossless.
EXPORT_COLUMNS = (*CSV_COLUMNS, "created_at", "updated_at")
TOPIC_SEPARATOR = ";"
MAX_TOPICS = 50
MAX_TOPIC_LENGTH = 100
MAX_NAME_LENGTH = 200

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
# OWASP's CSV injection rule: a spreadsheet runs a cell starting with one of these as a
# formula, so export quotes it with a leading apostrophe and import takes that off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_QUOTE = "'"


def neutralise_cell(value: str) -> str:
    """The cell as export writes it: a would-be formula becomes text in any spreadsheet."""
    return FORMULA_QUOTE + value if _quoted_on_export(value) else value


def restore_cell(value: str) -> str:
    """The cell as export was given it (the inverse of neutralise_cell)."""
    if value.startswith(FORMULA_QUOTE) and _quoted_on_export(value[1:]):
        return value[1:]
    return value


def _quoted_on_export(value: str) -> bool:
    # Apostrophes already in front are quoted too, so import can tell them from ours.
    return value.lstrip(FORMULA_QUOTE).startswith(FORMULA_STARTS)


def parse_email(value: str) -> str:
    # The local part is case-sensitive by the RFC but not in practice: treat
    # Ann@x and ann@x as one subscriber.
    return validate.email_address(value).lower()


def parse_name(value: str) -> str:
    # The name goes into the To: header: no line breaks or control characters.
    name = " ".join(_CONTROL.sub(" ", value).split())
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidField(f"name is longer than {MAX_NAME_LENGTH} characters")
    return name


def parse_status(value: str) -> SubscriberStatus:
    try:
        return SubscriberStatus(value.strip().lower() or SubscriberStatus.active)
    except ValueError:
        raise InvalidField(f"unknown status {value!r}; use {_choices(SubscriberStatus)}") from None


def parse_timezone(value: str, default: str = "UTC") -> str:
    return validate.time_zone(value.strip() or default)


def parse_delivery_hour(value: str | int | None) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        hour = int(value)
    except ValueError:
        raise InvalidField(f"delivery hour {value!r} is not a whole number from 0 to 23") from None
    if not 0 <= hour <= 23:
        raise InvalidField(f"delivery hour {hour} is not from 0 to 23")
    return hour


def parse_format(value: str) -> MailFormat:
    try:
        return MailFormat(value.strip().lower() or MailFormat.html)
    except ValueError:
        raise InvalidField(f"unknown format {value!r}; use {_choices(MailFormat)}") from None


def parse_topics(value: str | Iterable[str], separators: str = TOPIC_SEPARATOR) -> list[str]:
    """Topics from 'a; b' (or a list), trimmed, without blanks or repeats."""
    if isinstance(value, str):
        value = re.split(f"[{re.escape(separators)}]", value)
    topics: dict[str, str] = {}
    for raw in value:
        topic = " ".join(_CONTROL.sub(" ", raw).split())
        if not topic:
            continue
        if len(topic) > MAX_TOPIC_LENGTH:
            raise InvalidField(f"topic {topic[:30]!r}... is longer than {MAX_TOPIC_LENGTH} chars")
        if problem := topic_problem(topic):
            raise InvalidField(f"{problem}; give it a word to find")
        topics.setdefault(topic.lower(), topic)
    if len(topics) > MAX_TOPICS:
        raise InvalidField(f"{len(topics)} topics given; at most {MAX_TOPICS} are allowed")
    return list(topics.values())


def parse_timestamp(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidField(f"{value!r} is not an ISO 8601 time") from None
    if stamp.tzinfo is None:
        raise InvalidField(f"{value!r} has no UTC offset")
    return stamp


def _choices(enum: type) -> str:
    return " or ".join(repr(m.value) for m in enum)


@dataclass(frozen=True)
class BadRow:
    line: int
    email: str
    reason: str

    def __str__(self) -> str:
        shown = f" ({self.email})" if self.email else ""
        return _printable(f"line {self.line}{shown}: {self.reason}")


def _printable(text: str) -> str:
    """Control characters and line breaks from a cell shown escaped: one bad row, one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


@dataclass
class ImportPlan:
    """A CSV file read and checked: the rows to store and the rows refused."""

    columns: tuple[str, ...]
    rows: list[dict] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)


def decode_csv(data: bytes) -> str:
    """The file's text: UTF-8, with or without the byte-order mark spreadsheets add."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DigestError(
            f"line {line}: the file is not UTF-8 (byte 0x{data[exc.start]:02x}); "
            "save it as UTF-8 (in a spreadsheet: 'CSV UTF-8') and retry"
        ) from None


def read_csv(stream: TextIO, default_timezone: str = "UTC") -> ImportPlan:
    """Read and validate every row; nothing is written.

    Each good row becomes a dict of the columns the file names, parsed; cells
    left empty take the column's default (active, html, the default time zone,
    no delivery hour, no topics).
    """
    # strict: a stray quote is an error, rather than swallowing the rows after it.
    reader = csv.reader(stream, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DigestError(f"line 1: cannot read the header row: {exc}") from None
    if header is None:
        raise DigestError("the file is empty; it needs a header row naming at least 'email'")
    columns = tuple(name.strip().lower() for name in header)
    _check_header(columns)
    plan = ImportPlan(columns=columns)
    first_line: dict[str, int] = {}
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            raise DigestError(
                f"line {line}: the CSV is malformed ({exc}); fix it and retry"
            ) from None
        if cells is None:
            break
        start, line = line, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        try:
            row = _parse_row(columns, cells, default_timezone)
        except InvalidField as exc:
            plan.bad.append(BadRow(start, _cell(columns, cells, "email"), str(exc)))
            continue
        seen = first_line.setdefault(row["email"], start)
        if seen != start:
            plan.bad.append(BadRow(start, row["email"], f"duplicate of line {seen}"))
            continue
        plan.rows.append(row)
    return plan


def _check_header(columns: tuple[str, ...]) -> None:
    known = set(EXPORT_COLUMNS)
    unknown = [c for c in columns if c not in known]
    if unknown:
        separated = next((s for s in ";\t|" if s in unknown[0]), None)
        hint = f" (the file looks separated by {separated!r}: save it with commas)"
        raise DigestError(
            f"line 1: unknown column {unknown[0]!r}{hint if separated else ''}; "
            f"the columns are {', '.join(EXPORT_COLUMNS)}"
        )
    if "email" not in columns:
        raise DigestError("line 1: the header row has no 'email' column, which is required")
    repeated = {c for c in columns if columns.count(c) > 1}
    if repeated:
        raise DigestError(f"line 1: column {sorted(repeated)[0]!r} is named twice")


def _cell(columns: tuple[str, ...], cells: list[str], name: str) -> str:
    index = columns.index(name)
    return cells[index].strip() if index < len(cells) else ""


def _parse_row(columns: tuple[str, ...], cells: list[str], default_timezone: str) -> dict:
    if len(cells) != len(columns):
        raise InvalidField(f"{len(cells)} values but the header names {len(columns)} columns")
    raw = dict(zip(columns, map(restore_cell, cells), strict=True))
    row: dict = {"email": parse_email(raw["email"])}
    parsers = {
        "name": parse_name,
        "status": parse_status,
        "timezone": lambda v: parse_timezone(v, default_timezone),
        "delivery_hour": parse_delivery_hour,
        "format": parse_format,
        "topics_include": parse_topics,
        "topics_exclude": parse_topics,
        "created_at": parse_timestamp,
        "updated_at": parse_timestamp,
    }
    for column, value in raw.items():
        if column != "email":
            row[column] = parsers[column](value)
    return row


def import_csv(
    store: SubscriberRepository,
    stream: TextIO,
    *,
    default_timezone: str = "UTC",
    skip_invalid: bool = False,
    resubscribe: bool = False,
) -> tuple[ImportPlan, UpsertCounts | None]:
    """Validate the whole file, then store its good rows in one transaction.

    Returns the plan (with every bad row) and what was stored, or None when
    bad rows stopped the import and nothing was written.
    """
    plan = read_csv(stream, default_timezone)
    if plan.bad and not skip_invalid:
        return plan, None
    counts = upsert(store, plan.rows, default_timezone=default_timezone, resubscribe=resubscribe)
    return plan, counts


@dataclass
class UpsertCounts:
    """What a bulk upsert of subscribers did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_unsubscribed: int = 0


_NEW_SUBSCRIBER = {
    "name": "",
    "status": SubscriberStatus.active.value,
    "delivery_hour": None,
    "format": MailFormat.html.value,
    "topics_include": "[]",
    "topics_exclude": "[]",
}


def upsert(
    store: SubscriberRepository,
    rows: Iterable[dict],
    *,
    default_timezone: str = "UTC",
    resubscribe: bool = False,
) -> UpsertCounts:
    """Add or update many subscribers in one transaction.

    Each row holds `email` (normalised) and any other fields, already parsed;
    fields a row leaves out keep their stored value (or the default for a new
    subscriber). `updated_at` changes only on rows that really change. Someone who
    unsubscribed stays unsubscribed unless `resubscribe` is given: an old list
    must not undo their choice.
    """
    rows = list(rows)
    counts = UpsertCounts()

    def plan(existing: dict[str, Columns]) -> tuple[list[Columns], list[Columns]]:
        inserts, updates = [], []
        for row in rows:
            values = to_columns(row.items())
            current = existing.get(row["email"])
            if current is None:
                inserts.append({**_NEW_SUBSCRIBER, "timezone": default_timezone, **values})
                counts.added += 1
                continue
            values.pop("created_at", None)
            values.pop("updated_at", None)
            unsubscribed = SubscriberStatus.unsubscribed
            if (
                current["status"] == unsubscribed
                and values.get("status", unsubscribed) != unsubscribed
                and not resubscribe
            ):
                del values["status"]
                counts.kept_unsubscribed += 1
            merged = {**current, **values}
            if merged == current:
                counts.unchanged += 1
                continue
            updates.append(merged)
            counts.updated += 1
        return inserts, updates

    store.upsert([r["email"] for r in rows], plan)
    return counts


def write_csv(subscribers: Iterable[Subscriber], stream: TextIO) -> int:
    """Write every field of every subscriber; returns how many were written.

    Cells a spreadsheet would run as formulas are quoted (neutralise_cell); read_csv
    takes the quote off, so export then import gives back exactly what was stored.
    """
    # CRLF, as RFC 4180 and spreadsheets write it; it also makes the csv module quote a
    # cell holding a bare CR, which a "\n" line end leaves unquoted (and unreadable).
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for sub in subscribers:
        cells = [
            sub.email,
            sub.name,
            sub.status.value,
            sub.timezone,
            "" if sub.delivery_hour is None else sub.delivery_hour,
            sub.format.value,
            TOPIC_SEPARATOR.join(sub.topics_include),
            TOPIC_SEPARATOR.join(sub.topics_exclude),
            sub.created_at.isoformat() if sub.created_at else "",
            sub.updated_at.isoformat() if sub.updated_at else "",
        ]
        writer.writerow([neutralise_cell(str(cell)) for cell in cells])
        count += 1
    return count


def describe(sub: Subscriber) -> list[tuple[str, str]]:
    """A subscriber's fields as (label, value) pairs, for `digest subscribers show`."""
    return [
        ("email", sub.email),
        ("log reference", subscriber_ref(sub.email)),
        ("name", sub.name),
        ("status", sub.status.value),
        ("timezone", sub.timezone),
        ("delivery_hour", "any" if sub.delivery_hour is None else f"{sub.delivery_hour:02d}:00"),
        ("format", sub.format.value),
        ("topics_include", "; ".join(sub.topics_include) or "(all)"),
        ("topics_exclude", "; ".join(sub.topics_exclude) or "(none)"),
        ("paused_until", sub.paused_until.isoformat() if sub.paused_until else "(not paused)"),
        ("created_at", sub.created_at.isoformat() if sub.created_at else ""),
        ("updated_at", sub.updated_at.isoformat() if sub.updated_at else ""),
    ]
