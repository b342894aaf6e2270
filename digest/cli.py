"""The `digest` command line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path

import click

from digest import __version__
from digest.config import ConfigError, Settings, load_settings
from digest.logs import configure_logging
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
        self.verbose = False
        self._settings: Settings | None = None
        self._store: Store | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
            if self._settings.log_format != "auto":
                configure_logging(self._settings.log_format, verbose=self.verbose)
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
@pass_ctx
def cli(ctx: _Context, verbose: bool) -> None:
    """Collect the day's news from your feeds and email a digest to subscribers."""
    ctx.verbose = verbose
    configure_logging("auto", verbose=verbose)


@cli.command()
@_edition_options
@click.option("--dry-run", is_flag=True, help="Render and write the preview instead of sending.")
@pass_ctx
def run(ctx: _Context, now, since, feeds, out, dry_run: bool) -> None:
    """The daily job: build today's edition and send it to every active subscriber."""
    from digest.job import build_edition, send_edition
    from digest.preview import write_preview

    edition = build_edition(
        ctx.settings, ctx.store, now=now, since=since, feeds=list(feeds) or None
    )
    if dry_run:
        out = out or ctx.settings.output_dir
        paths = write_preview(edition, ctx.settings, out)
        _print_written(edition, paths)
        return
    report = send_edition(edition, ctx.settings, ctx.store)
    click.echo(report.summary())
    if report.failed:
        sys.exit(EXIT_PARTIAL)
    if report.sent == 0:
        sys.exit(EXIT_NOTHING)


@cli.command()
@_edition_options
@click.option(
    "--format", "fmt", type=click.Choice(["files", "json"]), default="files", show_default=True
)
@click.option("--subscriber", metavar="ADDRESS", help="Render this subscriber's own digest.")
@click.option("--serve", is_flag=True, help="Then show it on 127.0.0.1, switching HTML and text.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Port for --serve; 0 picks a free one."
)
@pass_ctx
def preview(
    ctx: _Context, now, since, feeds, out, fmt: str, subscriber: str | None, serve: bool, port: int
) -> None:
    """Build the edition and write it out; never sends."""
    from digest.job import build_edition
    from digest.preview import serve_preview, write_preview

    if serve and fmt == "json":
        raise click.UsageError("--serve shows the files; drop --format json")
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
    out = out or ctx.settings.output_dir
    paths = write_preview(edition, ctx.settings, out, sub)
    _print_written(edition, paths)
    if serve:
        serve_preview(
            out, port, lambda url: click.echo(f"serving the preview at {url} (Ctrl-C stops)")
        )


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
    """Print every listed feed with its health."""
    for row in ctx.store.feed_rows():
        status = (
            "ok"
            if not row["last_error"]
            else f"failing x{row['consecutive_failures']}: {row['last_error']}"
        )
        click.echo(f"{row['url']}\t{status}")


@feeds.command("check")
@pass_ctx
def feeds_check(ctx: _Context) -> None:
    """Fetch every feed now and print a table of status, articles and time taken.

    Exits 3 when any feed failed.
    """
    from digest.collect import check
    from digest.job import resolve_sources

    reports = check(resolve_sources(ctx.settings, ctx.store), ctx.store, ctx.settings)
    click.echo(f"{'STATUS':<12} {'ARTICLES':>8} {'SECONDS':>8}  FEED")
    for r in reports:
        status = "ok" if r.ok else ("dead" if r.dead else f"failing x{r.failures}")
        line = f"{status:<12} {r.articles:>8} {r.seconds:>8.2f}  {r.url}"
        click.echo(line if r.ok else f"{line}\n{'':<31}{r.error}")
    failed = sum(not r.ok for r in reports)
    click.echo(f"{len(reports)} feeds, {failed} failing")
    if failed:
        sys.exit(EXIT_PARTIAL)


@feeds.command("import")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ctx
def feeds_import(ctx: _Context, opml_file: Path) -> None:
    """Add every feed in an OPML file (nested folders included)."""
    from digest.collect.opml import OpmlError, read_opml

    try:
        found, skipped = read_opml(opml_file.read_bytes())
    except OpmlError as exc:
        raise DigestError(f"{opml_file}: {exc}") from None
    known = set(ctx.store.feed_urls())
    added = 0
    for url, title in found:
        if url not in known:
            ctx.store.add_feed(url, title)
            added += 1
    for url in skipped:
        click.echo(f"skipped {url}: only http(s) feeds are imported", err=True)
    click.echo(f"imported {added} feeds ({len(found) - added} already listed)")


@feeds.command("export")
@pass_ctx
def feeds_export(ctx: _Context) -> None:
    """Print every stored feed as OPML, for another feed reader."""
    from digest.collect.opml import write_opml

    rows = ctx.store.feed_rows()
    click.echo(write_opml([(r["url"], r["title"]) for r in rows]).decode("utf-8"), nl=False)


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


@cli.command()
@pass_ctx
def check(ctx: _Context) -> None:
    """Check settings, database, SMTP server (up to login, sends nothing) and every feed."""
    from digest.check import check_database, check_feeds, check_secret, check_smtp
    from digest.job import resolve_sources

    try:
        settings = ctx.settings
    except ConfigError as exc:
        for line in str(exc).splitlines():
            click.echo(f"FAIL settings: {line}")
        sys.exit(EXIT_CONFIG)
    checks = [check_secret(settings)]
    database, store = check_database(settings)
    checks.append(database)
    checks.append(check_smtp(settings))
    if store is not None:
        checks.extend(check_feeds(settings, store, resolve_sources(settings, store)))
    click.echo("ok   settings: every DIGEST_* value is valid")
    for result in checks:
        click.echo(result.line())
    failed = sum(not c.ok for c in checks)
    click.echo(f"{len(checks) + 1 - failed} ok, {failed} failed")
    if failed:
        sys.exit(EXIT_ERROR)


@cli.command()
def health() -> None:
    """Exit 0 while `digest schedule` is alive (its heartbeat is fresh): the container check."""
    from digest.schedule import HEARTBEAT_FILE, heartbeat_is_fresh

    if not heartbeat_is_fresh():
        click.echo(f"unhealthy: no recent heartbeat in {HEARTBEAT_FILE.resolve()}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo("healthy")


def main() -> None:
    cli(prog_name="digest")
