"""The `digest` command line."""

from __future__ import annotations

import io
import json
import logging
import secrets
import sys
import time
from datetime import datetime
from pathlib import Path

import click
from sqlalchemy.exc import DBAPIError

from digest import __version__
from digest.config import ConfigError, Settings, load_settings
from digest.logs import configure_logging, edition_context
from digest.models import DigestError, Shard, Subscriber, SubscriberStatus, edition_json
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
        except DBAPIError as exc:
            click.echo(
                f"error: the database failed: {str(exc.orig).strip()}; "
                "check DIGEST_DATABASE_URL and that the database server is running",
                err=True,
            )
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
@click.option(
    "--shard",
    metavar="K/N",
    help="Send only worker K's share of N (K from 0); N workers cover every subscriber once.",
)
@pass_ctx
def run(ctx: _Context, now, since, feeds, out, dry_run: bool, shard: str | None) -> None:
    """The daily job: build today's edition and send it to every active subscriber."""
    from digest.job import (
        build_edition,
        edition_id,
        edition_window,
        refuse_if_sending,
        send_edition,
        stored_or_built_edition,
    )
    from digest.preview import write_preview
    from digest.store import LockHeld

    part = Shard.parse(shard) if shard else None
    feeds = list(feeds) or None
    settings, store = ctx.settings, ctx.store
    with edition_context(edition_id(settings, edition_window(settings, now, since)[1])):
        if dry_run:
            edition = build_edition(settings, store, now=now, since=since, feeds=feeds)
            paths = write_preview(edition, settings, out or settings.output_dir)
            _print_written(edition, paths)
            return
        try:
            refuse_if_sending(settings, store, now, since, part)
            edition = stored_or_built_edition(settings, store, now=now, since=since, feeds=feeds)
            with _SendProgress() as progress:
                report = send_edition(edition, settings, store, progress, shard=part)
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
    if sub is not None:
        edition = _subscriber_view(edition, sub, ctx.settings)
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


def _subscriber_view(edition, sub: Subscriber, settings: Settings):
    """The edition as this subscriber would get it; says so when they would get nothing."""
    from digest.job import personal_edition, quiet_edition

    view = personal_edition(edition, sub, settings)
    if view is None:
        click.echo(
            f"{sub.email} would be skipped today, with nothing to read; "
            "showing the quiet-day note DIGEST_QUIET_DAY=note would send instead",
            err=True,
        )
        return quiet_edition(edition)
    return view


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
@click.option("--hour", default=None, help="Preferred delivery hour, 0-23, in their time zone.")
@click.option("--format", "fmt", default="html", help="html (with a text part) or text.")
@click.option("--topics", default="", help="Only themes about these, separated by ';'.")
@click.option("--exclude", default="", help="Never themes about these, separated by ';'.")
@pass_ctx
def subscribers_add(
    ctx: _Context,
    email: str,
    name: str,
    timezone: str | None,
    hour: str | None,
    fmt: str,
    topics: str,
    exclude: str,
) -> None:
    """Subscribe EMAIL."""
    from digest import subscribers as records

    sub = ctx.store.add_subscriber(
        Subscriber(
            email=records.parse_email(email),
            name=records.parse_name(name),
            timezone=records.parse_timezone(timezone or "", ctx.settings.timezone),
            delivery_hour=records.parse_delivery_hour(hour),
            format=records.parse_format(fmt),
            topics_include=records.parse_topics(topics),
            topics_exclude=records.parse_topics(exclude),
        )
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
@click.option(
    "--status", type=click.Choice([s.value for s in SubscriberStatus]), help="Only these."
)
@pass_ctx
def subscribers_list(ctx: _Context, status: str | None) -> None:
    """Print every subscriber with their status."""
    wanted = SubscriberStatus(status) if status else None
    for sub in ctx.store.iter_subscribers(wanted):
        click.echo(f"{sub.email}\t{sub.status.value}\t{sub.name}")


@subscribers.command("show")
@click.argument("email")
@pass_ctx
def subscribers_show(ctx: _Context, email: str) -> None:
    """Print every field of one subscriber."""
    from digest.subscribers import describe

    sub = ctx.store.get_subscriber(email)
    if sub is None:
        raise DigestError(f"no subscriber {email}; see `digest subscribers list`")
    for label, value in describe(sub):
        click.echo(f"{label}: {value}")


@subscribers.command("import")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--skip-invalid", is_flag=True, help="Store the good rows even if some are bad.")
@click.option(
    "--resubscribe", is_flag=True, help="Let the file reactivate people who unsubscribed."
)
@pass_ctx
def subscribers_import(ctx: _Context, path: Path, skip_invalid: bool, resubscribe: bool) -> None:
    """Add or update subscribers from a CSV file ('-' for standard input).

    The header row names any of the columns email (required), name, status,
    timezone, delivery_hour, format, topics_include, topics_exclude (topics
    separated by ';'). Every row is checked first; by default one bad row
    means nothing is stored.
    """
    from digest.subscribers import decode_csv, import_csv

    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise DigestError(f"cannot read {path}: {exc.strerror}") from None
    plan, counts = import_csv(
        ctx.store,
        io.StringIO(decode_csv(data), newline=""),
        default_timezone=ctx.settings.timezone,
        skip_invalid=skip_invalid,
        resubscribe=resubscribe,
    )
    for bad in plan.bad:
        click.echo(f"{path}: {bad}", err=True)
    if counts is None:
        raise DigestError(
            f"{len(plan.bad)} bad rows in {path}, so nothing was imported: "
            "fix them, or use --skip-invalid to store the other rows"
        )
    click.echo(
        f"imported {path}: {counts.added} added, {counts.updated} updated, "
        f"{counts.unchanged} unchanged, {len(plan.bad)} bad rows skipped"
    )
    if counts.kept_unsubscribed:
        click.echo(
            f"{counts.kept_unsubscribed} who unsubscribed were kept unsubscribed "
            "(use --resubscribe only with their consent)"
        )


@subscribers.command("export")
@click.argument(
    "path", default="-", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path)
)
@pass_ctx
def subscribers_export(ctx: _Context, path: Path) -> None:
    """Write every subscriber, every field, as CSV (to PATH, default standard output)."""
    from digest.subscribers import write_csv

    if str(path) == "-":
        write_csv(ctx.store.iter_subscribers(), sys.stdout)
        return
    try:
        with path.open("w", encoding="utf-8", newline="") as stream:
            count = write_csv(ctx.store.iter_subscribers(), stream)
    except OSError as exc:
        raise DigestError(f"cannot write {path}: {exc.strerror}") from None
    click.echo(f"exported {count} subscribers to {path}")


@cli.command()
@click.option("--host", help="Interface to listen on [default: DIGEST_SERVE_HOST].")
@click.option("--port", type=click.IntRange(1, 65535), help="[default: DIGEST_SERVE_PORT].")
@pass_ctx
def serve(ctx: _Context, host: str | None, port: int | None) -> None:
    """Run the web app behind DIGEST_PUBLIC_URL: web editions, preferences, unsubscribe."""
    from digest.web import serve as run_server

    run_server(
        ctx.settings, ctx.store, host or ctx.settings.serve_host, port or ctx.settings.serve_port
    )


@cli.command()
def secret() -> None:
    """Print a new random signing key for DIGEST_SECRET_KEY."""
    click.echo(secrets.token_urlsafe(32))


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


@cli.command("schedule")
@pass_ctx
def schedule_command(ctx: _Context) -> None:
    """Send every morning at DIGEST_SEND_AT, and hourly at subscribers' own hours, until stopped."""
    from digest.job import edition_sent, send_due
    from digest.schedule import Clock, Scheduler

    settings, store = ctx.settings, ctx.store
    scheduler = Scheduler(
        settings,
        send=lambda now, hourly: send_due(settings, store, now, hourly=hourly, stop=scheduler.stop),
        is_done=lambda when: edition_sent(settings, store, when),
        clock=Clock(settings.clock_start, settings.clock_speed),
    )
    scheduler.run_forever()


@cli.command()
@click.option("--limit", default=20, show_default=True, help="How many of the latest runs.")
@pass_ctx
def runs(ctx: _Context, limit: int) -> None:
    """List past send runs with their figures, newest first."""
    rows = ctx.store.recent_runs(limit)
    click.echo(
        f"{'STARTED (UTC)':<19}  {'EDITION':<22} {'SHARD':<5} {'STATUS':<8} "
        f"{'SENT':>6} {'FAILED':>6} {'SKIPPED':>7} {'BOUNCED':>7} {'MSG/S':>6}"
    )
    for run in rows:
        r = run["report"]
        click.echo(
            f"{run['started_at']:%Y-%m-%d %H:%M:%S}  {run['edition_id']:<22} "
            f"{run['shard'] or '-':<5} {run['status']:<8} {r.get('sent', 0):>6} "
            f"{r.get('failed', 0):>6} {r.get('skipped', 0):>7} {r.get('bounced', 0):>7} "
            f"{r.get('rate', 0):>6}"
        )


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
