"""Logging: readable lines on a terminal, one JSON object a line everywhere else.

Every line carries the id of the edition being built or sent, so the lines of
one morning's run can be found together in any log collector.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["auto", "text", "json"]

_edition: ContextVar[str | None] = ContextVar("edition", default=None)

# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "edition"}


def subscriber_ref(email: str) -> str:
    """A stable stand-in for an address in log lines: addresses never reach the logs.

    `digest subscribers show ADDRESS` prints the same reference, so an operator can go
    from a log line to the subscriber without the log holding anyone's address.
    """
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"sub-{digest[:12]}"


@contextmanager
def edition_context(edition_id: str) -> Iterator[None]:
    """Tag every log line written inside the block with this edition id."""
    token = _edition.set(edition_id)
    try:
        yield
    finally:
        _edition.reset(token)


class _EditionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.edition = _edition.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, edition and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "edition": getattr(record, "edition", None),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        edition = getattr(record, "edition", None)
        return f"{text} [{edition}]" if edition else text


def configure_logging(fmt: LogFormat = "auto", *, verbose: bool = False) -> None:
    """Send logs to stderr; JSON when `fmt` says so or, on `auto`, when not on a terminal."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_EditionFilter())
    handler.setFormatter(
        JsonFormatter()
        if use_json
        else _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore", "alembic", "aiosmtplib", "mail.log", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
