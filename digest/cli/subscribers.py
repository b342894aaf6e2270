"""`digest subscribers ...`: who receives the digest. Every field is checked by the
same parsers as the CSV import and the preferences page (digest.subscribers)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import click

from digest.cli.base import Context, pass_ctx, remove_command
from digest.errors import DigestError
from digest.states import SubscriberStatus


@click.group()
def subscribers() -> None:
    """Manage who receives the digest."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="Shown in the To: header.")
@click.option("--timezone", default=None, help="IANA time zone for times in their digest.")
@click.option("--hour", default=None, help="Preferred delivery hour, 0-23, in their time zone.")
@click.option("--format", "fmt", default="html", help="html (with a text part) or text.")
@click.option("--topics", default="", help="Only headlines about these, separated by ';'.")
@click.option("--exclude", default="", help="Never headlines about these, separated by ';'.")
@pass_ctx
def subscribers_add(
    ctx: Context,
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
    from digest.models import Subscriber

    sub = ctx.db.subscribers.add(
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


remove_command(
    subscribers,
    "email",
    "Delete EMAIL from the list.",
    lambda db, email: db.subscribers.remove(email),
    "no subscriber {}",
)


@subscribers.command("list")
@click.option(
    "--status", type=click.Choice([s.value for s in SubscriberStatus]), help="Only these."
)
@pass_ctx
def subscribers_list(ctx: Context, status: str | None) -> None:
    """Print every subscriber with their status."""
    wanted = SubscriberStatus(status) if status else None
    listed = 0
    for sub in ctx.db.subscribers.iter(wanted, unusable=_say_unusable):
        click.echo(f"{sub.email}\t{sub.status.value}\t{sub.name}")
        listed += 1
    if not listed:
        click.echo(
            f"no {status + ' ' if status else ''}subscribers; see `digest subscribers add`",
            err=True,
        )


@subscribers.command("show")
@click.argument("email")
@pass_ctx
def subscribers_show(ctx: Context, email: str) -> None:
    """Print every field of one subscriber."""
    from digest.subscribers import describe

    sub = ctx.db.subscribers.get(email)
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
def subscribers_import(ctx: Context, path: Path, skip_invalid: bool, resubscribe: bool) -> None:
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
        ctx.db.subscribers,
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
def subscribers_export(ctx: Context, path: Path) -> None:
    """Write every subscriber, every field, as CSV (to PATH, default standard output)."""
    from digest.subscribers import write_csv

    if str(path) == "-":
        write_csv(ctx.db.subscribers.iter(unusable=_say_unusable), sys.stdout)
        return
    try:
        with path.open("w", encoding="utf-8", newline="") as stream:
            count = write_csv(ctx.db.subscribers.iter(unusable=_say_unusable), stream)
    except OSError as exc:
        raise DigestError(f"cannot write {path}: {exc.strerror}") from None
    click.echo(f"exported {count} subscribers to {path}")


def _say_unusable(_record_id: int, _email: str, why: str) -> None:
    """A stored record that cannot be used is named on stderr, never silently left out."""
    click.echo(f"skipped {why}", err=True)


COMMANDS = (subscribers,)
