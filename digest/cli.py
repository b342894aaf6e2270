"""The `digest` command line."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime
from pathlib import Path

import click

from digest import __version__
from digest.config import ConfigError, Settings, load_settings
from digest.models import DigestError, Subscriber, edition_json
from digest.store import Store

log = logging.getLogger("digest")

# Exit statuses, documented in the README.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_PARTIAL = 3
EXIT_NOTHING = 4
EXIT_RUNNING = 5


class _Group(click.Group):
    """Turns every DigestError into one readable line and an exit status."""

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


class _Context:
    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._store: Store | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings.database_url)
        return self._store


pass_ctx = click.make_pass_decorator(_Context, ensure=True)


def _iso(_ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
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


def _edition_options(func):
    func = click.option(
        "--out", type=click.Path(path_type=Path), help="Where to write the preview."
    )(func)
    func = click.option(
        "--feeds",
        "feeds",
        multiple=True,
        metavar="URL_OR_PATH",
        help="Use these feeds instead (repeatable).",
    )(func)
    func = click.option(
        "--since", callback=_iso, help="Start of the window (ISO 8601), for backfills."
    )(func)
    func = click.option("--now", callback=_iso, help="End of the window (ISO 8601); default: now.")(
        func
    )
    return func


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="digest")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(verbose: bool) -> None:
    """Collect the day's news from your feeds and email a digest to subscribers."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@cli.command()
@_edition_options
@click.option("--dry-run", is_flag=True, help="Render and write the preview instead of sending.")
@pass_ctx
def run(ctx: _Context, now, since, feeds, out, dry_run: bool) -> None:
    """The daily job: build today's edition and send it to every active subscriber."""
    from digest.job import build_edition, refuse_if_sending, send_edition, write_preview
    from digest.store import LockHeld

    if not dry_run:
        try:
            refuse_if_sending(ctx.settings, ctx.store, now, since)
        except LockHeld as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_RUNNING)
    edition = build_edition(
        ctx.settings, ctx.store, now=now, since=since, feeds=list(feeds) or None
    )
    if dry_run:
        out = out or ctx.settings.output_dir
        paths = write_preview(edition, ctx.settings, out)
        _print_written(edition, paths)
        return
    try:
        with _SendProgress() as progress:
            report = send_edition(edition, ctx.settings, ctx.store, progress)
    except LockHeld as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_RUNNING)
    click.echo(report.summary())
    sys.exit({"done": EXIT_OK, "partial": EXIT_PARTIAL, "nothing": EXIT_NOTHING}[report.status])


class _SendProgress:
    """A progress bar with rate and ETA on a terminal; silent otherwise (failures are logged)."""

    def __init__(self) -> None:
        self.bar = None
        self.started = 0.0
        self.done = 0

    def __call__(self, step: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self.bar is None:
            self.started = time.monotonic()
            self.bar = click.progressbar(
                length=total,
                label="sending",
                show_eta=True,
                show_pos=True,
                file=sys.stderr,
                item_show_func=lambda rate: rate,
            )
            self.bar.__enter__()
        self.done += step
        rate = self.done / max(time.monotonic() - self.started, 1e-3)
        self.bar.update(step, f"{rate:.0f} msg/s")

    def __enter__(self) -> _SendProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc_info)


@cli.command()
@_edition_options
@click.option(
    "--format", "fmt", type=click.Choice(["files", "json"]), default="files", show_default=True
)
@click.option("--subscriber", metavar="ADDRESS", help="Render this subscriber's own digest.")
@pass_ctx
def preview(ctx: _Context, now, since, feeds, out, fmt: str, subscriber: str | None) -> None:
    """Build the edition and write it out; never sends."""
    from digest.job import build_edition, write_preview

    sub = None
    if subscriber:
        sub = ctx.store.get_subscriber(subscriber)
        if sub is None:
            raise DigestError(f"no subscriber {subscriber}; see `digest subscribers list`")
    edition = build_edition(
        ctx.settings, ctx.store, now=now, since=since, feeds=list(feeds) or None
    )
    if fmt == "json":
        click.echo(json.dumps(edition_json(edition), indent=2, ensure_ascii=False))
        return
    paths = write_preview(edition, ctx.settings, out or ctx.settings.output_dir, sub)
    _print_written(edition, paths)


def _print_written(edition, paths: list[Path]) -> None:
    click.echo(
        f"edition {edition.id}: {edition.article_count} articles in {len(edition.themes)} themes "
        f"from {len(edition.feeds)} feeds ({sum(not f.ok for f in edition.feeds)} failed)"
    )
    for path in paths:
        click.echo(f"wrote {path.resolve()}")


@cli.group()
def subscribers() -> None:
    """Manage who receives the digest."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="Shown in the To: header.")
@click.option("--timezone", default=None, help="IANA time zone for times in their digest.")
@pass_ctx
def subscribers_add(ctx: _Context, email: str, name: str, timezone: str | None) -> None:
    """Subscribe EMAIL."""
    sub = ctx.store.add_subscriber(
        Subscriber(email=email, name=name, timezone=timezone or ctx.settings.timezone)
    )
    click.echo(f"subscribed {sub.email}")


@subscribers.command("remove")
@click.argument("email")
@pass_ctx
def subscribers_remove(ctx: _Context, email: str) -> None:
    """Delete EMAIL from the list."""
    if not ctx.store.remove_subscriber(email):
        raise DigestError(f"no subscriber {email}")
    click.echo(f"removed {email}")


@subscribers.command("list")
@pass_ctx
def subscribers_list(ctx: _Context) -> None:
    """Print every subscriber with their status."""
    for sub in ctx.store.iter_subscribers():
        click.echo(f"{sub.email}\t{sub.status.value}\t{sub.name}")


@cli.group()
def feeds() -> None:
    """Manage the feeds the digest is collected from."""


@feeds.command("add")
@click.argument("url")
@pass_ctx
def feeds_add(ctx: _Context, url: str) -> None:
    """Add a feed by URL (or a file path)."""
    ctx.store.add_feed(url)
    click.echo(f"added {url}")


@feeds.command("remove")
@click.argument("url")
@pass_ctx
def feeds_remove(ctx: _Context, url: str) -> None:
    """Remove a feed."""
    if not ctx.store.remove_feed(url):
        raise DigestError(f"no feed {url}; see `digest feeds list`")
    click.echo(f"removed {url}")


@feeds.command("list")
@pass_ctx
def feeds_list(ctx: _Context) -> None:
    """Print every stored feed with its health."""
    for row in ctx.store.feed_rows():
        status = (
            "ok"
            if not row["last_error"]
            else f"failing x{row['consecutive_failures']}: {row['last_error']}"
        )
        click.echo(f"{row['url']}\t{status}")


@cli.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: _Context) -> None:
    """Apply pending schema migrations, keeping every row."""
    from digest.store import upgrade_schema

    store = Store(ctx.settings.database_url, ensure_schema=False)
    before, after = upgrade_schema(store.engine)
    store.close()
    if before == after:
        click.echo(f"database already at revision {after}")
    else:
        click.echo(f"database upgraded from revision {before or 'empty'} to {after}")


def main() -> None:
    cli(prog_name="digest")
