"""Running the service: `check`, `schedule`, `runs`, `health`, `db upgrade`, `secret`."""

from __future__ import annotations

import sys

import click

from digest.cli.base import EXIT_CONFIG, EXIT_ERROR, Context, pass_ctx


@click.command()
@pass_ctx
def check(ctx: Context) -> None:
    """Check settings, database, SMTP server (up to login, sends nothing), the grouping
    model and every feed."""
    from digest.check import (
        check_database,
        check_embedding_model,
        check_feeds,
        check_secret,
        check_setting_names,
        check_smtp,
    )
    from digest.collect.sources import resolve_sources
    from digest.errors import ConfigError

    try:
        settings = ctx.settings
    except ConfigError as exc:
        for line in str(exc).splitlines():
            click.echo(f"FAIL settings: {line}")
        for name in check_setting_names():
            click.echo(name.line())
        sys.exit(EXIT_CONFIG)
    checks = check_setting_names()
    names_ok = not checks
    if names_ok:
        click.echo("ok   settings: every DIGEST_* value is valid")
    checks.append(check_secret(settings))
    database, db = check_database(settings)
    checks.append(database)
    checks.append(check_smtp(settings))
    checks.append(check_embedding_model(settings))
    if db is not None:
        checks.extend(check_feeds(settings, db.feeds, resolve_sources(settings, db.feeds)))
    for result in checks:
        click.echo(result.line())
    failed = sum(not c.ok for c in checks)
    click.echo(f"{names_ok + sum(c.ok for c in checks)} ok, {failed} failed")
    if failed:
        sys.exit(EXIT_ERROR)


@click.command("schedule")
@pass_ctx
def schedule_command(ctx: Context) -> None:
    """Send every morning at DIGEST_SEND_AT, and hourly at subscribers' own hours, until stopped."""
    from digest.schedule import for_database

    ctx.settings.require_secret_key()  # a scheduler that could never send stops now
    for_database(ctx.settings, ctx.db).run_forever()


@click.command()
@click.option("--limit", default=20, show_default=True, help="How many of the latest runs.")
@pass_ctx
def runs(ctx: Context, limit: int) -> None:
    """List past send runs with their figures, newest first; below a run, why it failed
    and the alerts it raised. A run killed mid-way shows as interrupted once its lock
    has lapsed."""
    recent = ctx.db.ledger.recent_runs(limit)
    click.echo(
        f"{'STARTED (UTC)':<19}  {'EDITION':<22} {'SHARD':<5} {'STATUS':<11} "
        f"{'SENT':>6} {'FAILED':>6} {'SKIPPED':>7} {'BOUNCED':>7} {'MSG/S':>6}"
    )
    for run in recent:
        r = run.report
        click.echo(
            f"{run.started_at:%Y-%m-%d %H:%M:%S}  {run.edition_id:<22} "
            f"{run.shard or '-':<5} {run.status.value:<11} {r.get('sent', 0):>6} "
            f"{r.get('failed', 0):>6} {r.get('skipped', 0):>7} {r.get('bounced', 0):>7} "
            f"{r.get('rate', 0):>6}"
        )
        notes = [r["reason"]] if r.get("reason") else []
        if r.get("unusable"):
            notes.append(f"{r['unusable']} unusable subscriber records skipped (see the log)")
        for note in [*notes, *r.get("alerts", [])]:
            click.echo(f"{'':<21}{note}")
    if not recent:
        click.echo("no send runs yet: `digest run` sends the day's edition", err=True)


@click.command()
def health() -> None:
    """Exit 0 while `digest schedule` is alive (its heartbeat is fresh): the container check."""
    from digest.schedule import HEARTBEAT_FILE, heartbeat_is_fresh

    if not heartbeat_is_fresh():
        click.echo(f"unhealthy: no recent heartbeat in {HEARTBEAT_FILE.resolve()}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo("healthy")


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Apply pending schema migrations, keeping every row."""
    from digest.db import Database

    database = Database(ctx.settings.database_url, ensure_schema=False)
    before, after = database.upgrade()
    database.close()
    if before == after:
        click.echo(f"database already at revision {after}")
    else:
        click.echo(f"database upgraded from revision {before or 'empty'} to {after}")


@click.command()
def secret() -> None:
    """Print a new random signing key for DIGEST_SECRET_KEY."""
    import secrets

    click.echo(secrets.token_urlsafe(32))


COMMANDS = (check, schedule_command, runs, health, db, secret)
