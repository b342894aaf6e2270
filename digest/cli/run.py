"""`digest run` (the daily job) and `digest preview` (build and show, never send)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from digest.cli.base import (
    EXIT_NOTHING,
    EXIT_OK,
    EXIT_OUTAGE,
    EXIT_PARTIAL,
    EXIT_RUNNING,
    Context,
    iso_time,
    pass_ctx,
)
from digest.errors import DigestError


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
        "--since", callback=iso_time, help="Start of the window (ISO 8601), for backfills."
    )(func)
    func = click.option(
        "--now", callback=iso_time, help="End of the window (ISO 8601); default: now."
    )(func)
    return func


@click.command()
@_edition_options
@click.option("--dry-run", is_flag=True, help="Render and write the preview instead of sending.")
@click.option(
    "--shard",
    metavar="K/N",
    help="Send only worker K's share of N (K from 0); N workers cover every subscriber once.",
)
@pass_ctx
def run(ctx: Context, now, since, feeds, out, dry_run: bool, shard: str | None) -> None:
    """The daily job: build today's edition and send it to every active subscriber."""
    from digest import job
    from digest.errors import CollectionFailed, LockHeld
    from digest.models import RunStatus, Shard

    part = Shard.parse(shard) if shard else None
    feeds = list(feeds) or None
    settings, db = ctx.settings, ctx.db
    if dry_run:
        from digest.preview import output_folder, write_preview

        output_folder(out or settings.output_dir)
        try:
            edition = job.preview_edition(
                settings, db, now=now, since=since, feeds=feeds, refuse_outage=True
            )
        except CollectionFailed as exc:  # what the real run would do, and nothing written
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_OUTAGE)
        _print_written(edition, write_preview(edition, settings, out or settings.output_dir))
        return
    try:
        with _SendProgress() as progress:
            report = job.run_edition(
                settings, db, now=now, since=since, feeds=feeds, shard=part, progress=progress
            )
    except LockHeld as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_RUNNING)
    except CollectionFailed as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_OUTAGE)
    click.echo(report.summary())
    exits = {RunStatus.done: EXIT_OK, RunStatus.partial: EXIT_PARTIAL}
    sys.exit(exits.get(report.status, EXIT_NOTHING))


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


@click.command()
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
    ctx: Context, now, since, feeds, out, fmt: str, subscriber: str | None, serve: bool, port: int
) -> None:
    """Build the edition and write it out; never sends."""
    from digest import job
    from digest.models import edition_json
    from digest.preview import output_folder, serve_preview, write_preview

    if serve and fmt == "json":
        raise click.UsageError("--serve shows the files; drop --format json")
    if fmt == "files":
        output_folder(out or ctx.settings.output_dir)
    sub = None
    if subscriber:
        sub = ctx.db.subscribers.get(subscriber)
        if sub is None:
            raise DigestError(f"no subscriber {subscriber}; see `digest subscribers list`")
    edition = job.preview_edition(
        ctx.settings, ctx.db, now=now, since=since, feeds=list(feeds) or None
    )
    if sub is not None:
        edition = _subscriber_view(edition, sub, ctx.settings)
    if fmt == "json":
        click.echo(json.dumps(edition_json(edition), indent=2, ensure_ascii=False))
        return
    out = out or ctx.settings.output_dir
    _print_written(edition, write_preview(edition, ctx.settings, out, sub))
    if serve:
        serve_preview(
            out, port, lambda url: click.echo(f"serving the preview at {url} (Ctrl-C stops)")
        )


def _subscriber_view(edition, sub, settings):
    """The edition as this subscriber would get it; says so when they would get nothing."""
    from digest.personalise import personal_edition, quiet_edition, view_options

    view = personal_edition(edition, sub, **view_options(settings))
    if view is None:
        click.echo(
            f"{sub.email} would be skipped today, with nothing to read; "
            "showing the quiet-day note DIGEST_QUIET_DAY=note would send instead",
            err=True,
        )
        return quiet_edition(edition)
    return view


def _print_written(edition, paths: list[Path]) -> None:
    from digest.models import counted

    click.echo(
        f"edition {edition.id}: {counted(edition.article_count, 'article')} in "
        f"{counted(len(edition.themes), 'theme')} from {counted(len(edition.feeds), 'feed')} "
        f"({sum(not f.ok for f in edition.feeds)} failed)"
    )
    for path in paths:
        click.echo(f"wrote {path.resolve()}")


COMMANDS = (run, preview)
