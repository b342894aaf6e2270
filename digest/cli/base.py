"""What every command shares: the exit statuses, the lazily built settings and
database, error reporting, and the ISO 8601 time option.

Nothing heavy is imported here: `digest --help` must start in a blink.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import click

from digest.errors import ConfigError, DigestError

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.db import Database

# Exit statuses, documented in the README.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_PARTIAL = 3
EXIT_NOTHING = 4
EXIT_RUNNING = 5
EXIT_OUTAGE = 6


class DigestGroup(click.Group):
    """Turns every DigestError (and database failure) into one readable line and an exit status."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            for line in str(exc).splitlines():
                click.echo(f"configuration error: {line}", err=True)
            ctx.exit(EXIT_CONFIG)
        except DigestError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except Exception as exc:
            if not _is_database_failure(exc):
                raise
            click.echo(
                f"error: the database failed: {str(exc.orig).strip()}; "  # type: ignore[attr-defined]
                "check DIGEST_DATABASE_URL and that the database server is running",
                err=True,
            )
            ctx.exit(EXIT_ERROR)


def _is_database_failure(exc: Exception) -> bool:
    # Only a command that imported SQLAlchemy can fail in it: --help need not import it.
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.DBAPIError)


class Context:
    """Settings and database, built on first use so commands that need neither start fast."""

    def __init__(self) -> None:
        self.verbose = False
        self._settings: Settings | None = None
        self._db: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from digest.config import load_settings, warn_unknown_settings
            from digest.logs import configure_logging

            try:
                settings = load_settings()
            except ConfigError:
                warn_unknown_settings()  # a misspelt name may be what is wrong
                raise
            if settings.log_format != "auto":
                configure_logging(settings.log_format, verbose=self.verbose)
            warn_unknown_settings()  # in the format DIGEST_LOG_FORMAT asks for
            self._settings = settings
        return self._settings

    @property
    def db(self) -> Database:
        if self._db is None:
            from digest.db import Database

            self._db = Database(self.settings.database_url)
        return self._db


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def remove_command(
    group: click.Group,
    argument: str,
    doc: str,
    remove: Callable[[Database, str], bool],
    missing: str,
) -> None:
    """Add `remove ARGUMENT` to `group`: remove() says whether there was one; `missing`
    (with {} for the value) says what to do when there was not."""

    @group.command("remove", help=doc)
    @click.argument(argument)
    @pass_ctx
    def command(ctx: Context, **values: str) -> None:
        value = values[argument]
        if not remove(ctx.db, value):
            raise DigestError(missing.format(value))
        click.echo(f"removed {value}")


def iso_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """An option's ISO 8601 time, which must carry its UTC offset."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not ISO 8601, e.g. 2026-03-19T07:00:00+00:00"
        ) from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no UTC offset; add one, e.g. {value}+00:00")
    return parsed
