"""`digest feeds ...`: the feeds the digest is collected from."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from digest.cli.base import EXIT_PARTIAL, Context, pass_ctx, remove_command
from digest.errors import DigestError


@click.group()
def feeds() -> None:
    """Manage the feeds the digest is collected from."""


@feeds.command("add")
@click.argument("url")
@pass_ctx
def feeds_add(ctx: Context, url: str) -> None:
    """Add a feed by URL (or a file path)."""
    ctx.db.feeds.add(url)
    click.echo(f"added {url}")


remove_command(
    feeds,
    "url",
    "Remove a feed.",
    lambda db, url: db.feeds.remove(url),
    "no feed {}; see `digest feeds list`",
)


@feeds.command("list")
@pass_ctx
def feeds_list(ctx: Context) -> None:
    """Print every listed feed with its health."""
    for feed in ctx.db.feeds.health():
        status = (
            "ok"
            if not feed.last_error
            else f"failing x{feed.consecutive_failures}: {feed.last_error}"
        )
        click.echo(f"{feed.url}\t{status}")


@feeds.command("check")
@pass_ctx
def feeds_check(ctx: Context) -> None:
    """Fetch every feed now and print a table of status, articles and time taken.

    Exits 3 when any feed failed.
    """
    from digest.collect import check
    from digest.collect.sources import resolve_sources

    store = ctx.db.feeds
    reports = check(resolve_sources(ctx.settings, store), store, ctx.settings)
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
def feeds_import(ctx: Context, opml_file: Path) -> None:
    """Add every feed in an OPML file (nested folders included)."""
    from digest.collect.opml import import_opml
    from digest.errors import OpmlError

    try:
        added, listed, skipped = import_opml(ctx.db.feeds, opml_file.read_bytes())
    except OpmlError as exc:
        raise DigestError(f"{opml_file}: {exc}") from None
    for url in skipped:
        click.echo(f"skipped {url}: only http(s) feeds are imported", err=True)
    click.echo(f"imported {added} feeds ({listed} already listed)")


@feeds.command("export")
@pass_ctx
def feeds_export(ctx: Context) -> None:
    """Print every stored feed as OPML, for another feed reader."""
    from digest.collect.opml import write_opml

    listed = [(f.url, f.title) for f in ctx.db.feeds.health()]
    click.echo(write_opml(listed).decode("utf-8"), nl=False)


COMMANDS = (feeds,)
