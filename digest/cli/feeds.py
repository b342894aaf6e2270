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


_NO_CHECK = click.option(
    "--no-check", is_flag=True, help="Add without fetching it first (a feed that is down now)."
)


@feeds.command("add")
@click.argument("url")
@_NO_CHECK
@pass_ctx
def feeds_add(ctx: Context, url: str, no_check: bool) -> None:
    """Add a feed by URL (or a file path), after fetching it once to see what it holds."""
    from digest.collect.probe import Problem, address_problem, probe_feed

    wrong = address_problem(url)
    if wrong is not None and wrong.problem is Problem.bad_scheme:  # no fetch could read it
        raise DigestError(f"not adding {url}: {wrong.describe()}")
    if no_check:
        ctx.db.feeds.add(url)
        click.echo(f"added {url} (not checked)")
        return
    found = probe_feed(url, ctx.settings)
    if not found.ok:
        raise DigestError(
            f"not adding {url}: {found.describe()}; add it anyway with `digest feeds add "
            "--no-check URL`"
        )
    ctx.db.feeds.add(url, found.title)
    click.echo(f"added {url}: {found.describe()}")


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
    listed = ctx.db.feeds.health()
    if not listed:
        click.echo(
            "no feeds listed: runs read DIGEST_FEEDS, or else the bundled samples; "
            "see `digest feeds add`",
            err=True,
        )
    for feed in listed:
        if feed.last_error:
            status = f"failing x{feed.consecutive_failures}: {feed.last_error}"
        else:  # health is what runs found; `digest feeds check` fetches now
            status = "ok" if feed.last_success else "not fetched by a run yet"
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
        status = "ok" if r.ok else "dead" if r.dead else f"failing x{r.failures}"
        if not r.ok and not r.failures:
            status = "failing"  # a check never counts: no real run has failed yet
        line = f"{status:<12} {r.articles:>8} {r.seconds:>8.2f}  {r.url}"
        click.echo(line if r.ok else f"{line}\n{'':<31}{r.error}")
    failed = sum(not r.ok for r in reports)
    click.echo(f"{len(reports)} feeds, {failed} failing")
    if failed:
        sys.exit(EXIT_PARTIAL)


@feeds.command("import")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_NO_CHECK
@pass_ctx
def feeds_import(ctx: Context, opml_file: Path, no_check: bool) -> None:
    """Add every feed in an OPML file (nested folders included), each checked as `add` does.

    Feeds that cannot be read are left out and named; exits 3 when there are any.
    """
    from digest.collect.opml import import_opml
    from digest.collect.probe import probe_feeds
    from digest.errors import OpmlError

    def readable(urls: list[str]) -> dict[str, str | None]:
        probes = probe_feeds(urls, ctx.settings)
        return {p.url: None if p.ok else p.describe() for p in probes}

    try:
        added, listed, skipped, refused = import_opml(
            ctx.db.feeds, opml_file.read_bytes(), None if no_check else readable
        )
    except OpmlError as exc:
        raise DigestError(f"{opml_file}: {exc}") from None
    for url in skipped:
        click.echo(f"skipped {url}: only http(s) feeds are imported", err=True)
    for url, why in refused.items():
        click.echo(f"not added {url}: {why}", err=True)
    click.echo(f"imported {added} feeds ({listed} already listed, {len(refused)} unreadable)")
    if refused:
        click.echo("add unreadable feeds anyway with `digest feeds import --no-check`", err=True)
        sys.exit(EXIT_PARTIAL)


@feeds.command("export")
@pass_ctx
def feeds_export(ctx: Context) -> None:
    """Print every stored feed as OPML, for another feed reader."""
    from digest.collect.opml import write_opml

    listed = [(f.url, f.title) for f in ctx.db.feeds.health()]
    click.echo(write_opml(listed).decode("utf-8"), nl=False)


COMMANDS = (feeds,)
