"""How settings are explained to the operator: fixed formats with an example of a
valid value (never a regular expression), the database URL's preconditions, the
nearest real name for a misspelt one, and bad values echoed without secrets.

Kept apart from `config` so the settings model stays a list of settings.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path

# Settings written in a fixed format: the rule (a regular expression, never shown),
# what to tell the operator, and an example of a valid value.
FORMATS: dict[str, tuple[str, str, str]] = {
    "list_id": (
        r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
        "use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        "morning-news",
    ),
    "send_at": (r"([01]\d|2[0-3]):[0-5]\d", "use HH:MM on a 24-hour clock", "06:30"),
    "send_deadline": (r"([01]\d|2[0-3]):[0-5]\d", "use HH:MM on a 24-hour clock", "09:00"),
    "public_url": (
        r"(https?://[^\s/?#]+(/\S*)?)?",
        "use an http:// or https:// address without spaces, or leave it empty",
        "https://digest.example.com",
    ),
    "list_unsubscribe_mailto": (
        r"([^\s@<>,\"]+@[^\s@<>,\"]+)?",
        "use one email address, or leave it empty",
        "unsubscribe@example.com",
    ),
    "feedback_id": (
        r"[\x21-\x7e]*",
        "use printable ASCII without spaces",
        "digest:daily:example.com",
    ),
    "dkim_selector": (
        r"([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)?",
        "use dot-separated words of letters, digits, '-' or '_'",
        "mail2026",
    ),
    "dkim_ed25519_selector": (
        r"([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)?",
        "use dot-separated words of letters, digits, '-' or '_'",
        "mail2026e",
    ),
    "dkim_domain": (
        r"([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)?",
        "use a domain name",
        "example.com",
    ),
}
# Examples for messages about settings whose default is empty or not a good example.
EXAMPLES: dict[str, str] = {
    "database_url": "sqlite:///digest.db",
    "feeds": "https://example.com/rss,https://example.org/atom.xml",
    "timezone": "Europe/Paris",
    "from_address": "digest@example.com",
    "alert_to": "ops@example.com",
    "templates_dir": "./my-templates",
    "dkim_key_file": "/etc/digest/dkim.pem",
    "clock_start": "2026-03-19T06:29:00+00:00",
    "topics": "Climate: climate, emissions; Elections: election, ballot",
}


# Words in a message that show it already carries an example of a valid value.
_HAS_EXAMPLE = re.compile(r"\be\.g\.|\bsuch as\b|\bas in\b")


def database_url_problem(url: str, cwd: Path) -> None:
    """Raise ValueError when the database URL cannot work: a driver that is not installed,
    or a SQLite file whose directory would have to be made outside the working tree."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise ValueError(
            "not a database URL digest can use, e.g. sqlite:///digest.db or "
            "postgresql+psycopg://user@host/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(
            f"digest stores its data in SQLite or PostgreSQL, not {backend}: "
            "e.g. sqlite:///digest.db or postgresql+psycopg://user@host/db"
        )
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        driver = exc.name or parsed.get_driver_name()
        if backend == "postgresql":
            fix = "pip install 'digest[postgres]' and use postgresql+psycopg://user@host/db"
        else:
            fix = f"pip install {driver}, or use sqlite:///digest.db or PostgreSQL"
        raise ValueError(f"the database driver {driver!r} is not installed; {fix}") from None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    folder = (cwd / Path(parsed.database).expanduser()).parent.resolve()
    home = cwd.resolve()
    if not folder.exists() and home != folder and home not in folder.parents:
        raise ValueError(
            f"the directory {folder} does not exist and is outside the working directory, "
            f"so it is not created silently; create it (mkdir -p {folder}) or use a path "
            "inside the working directory, e.g. sqlite:///data/digest.db"
        )


def shown_value(field: str, value: object) -> object:
    """A bad value as echoed back: a database URL without its password."""
    if field != "database_url" or not isinstance(value, str):
        return value
    from sqlalchemy.engine import make_url

    try:
        return make_url(value).render_as_string(hide_password=True)
    except Exception:  # not even a URL: nothing in it can be a password we recognise
        return value.split("@")[-1]


def explain(field: str, message: str, default: object, prefix: str) -> str:
    """pydantic's message, lower-cased, with an example of a valid value when it has none."""
    message = message.removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if _HAS_EXAMPLE.search(message):
        return message
    example = EXAMPLES.get(field)
    if example is None:
        example = "" if default is None else str(default)
    if not example:
        return message
    return f"{message}, e.g. {prefix + field.upper()}={example}"


def unknown_names(
    environ: Mapping[str, str], env_file: Path | None, known: list[str], prefix: str
) -> list[str]:
    """One line per name with the prefix, in the environment or the .env file, that is
    not in `known`, naming the nearest one that is."""
    from dotenv import dotenv_values

    found: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        for name in dotenv_values(env_file):
            found.setdefault(name, f"in {env_file}")
    for name in environ:
        found.setdefault(name, "in the environment")
    problems = []
    for name, where in found.items():
        upper = name.upper()
        if not upper.startswith(prefix) or upper in known:
            continue
        nearest = _nearest(upper, known)
        hint = (
            f"did you mean {' or '.join(nearest)}?"
            if nearest
            else ".env.example lists every setting"
        )
        problems.append(f"{name}: no such setting; {hint} ({where})")
    return problems


NEAREST_FLOOR = 0.6  # difflib's own default: below it a name is no misspelling
NEAREST_TIE = 0.05  # a second name this close is as likely meant: SEDN_TIME, SEND_RATE or SEND_AT


def _nearest(name: str, known: list[str]) -> list[str]:
    """The one or two known names `name` most likely misspells, nearest first."""
    scored = sorted(
        ((difflib.SequenceMatcher(None, name, k).ratio(), k) for k in known), reverse=True
    )
    best = scored[0][0] if scored else 0.0
    return [k for ratio, k in scored[:2] if ratio >= max(NEAREST_FLOOR, best - NEAREST_TIE)]
