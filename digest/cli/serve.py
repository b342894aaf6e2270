"""`digest serve`: the web app behind DIGEST_PUBLIC_URL."""

from __future__ import annotations

import click

from digest.cli.base import Context, pass_ctx


@click.command()
@click.option("--host", help="Interface to listen on [default: DIGEST_SERVE_HOST].")
@click.option("--port", type=click.IntRange(1, 65535), help="[default: DIGEST_SERVE_PORT].")
@pass_ctx
def serve(ctx: Context, host: str | None, port: int | None) -> None:
    """Run the web app behind DIGEST_PUBLIC_URL: web editions, preferences, unsubscribe."""
    from digest.web import serve as run_server

    settings = ctx.settings
    run_server(
        settings,
        ctx.db.subscribers,
        ctx.db.editions,
        host or settings.serve_host,
        port or settings.serve_port,
    )


COMMANDS = (serve,)
