"""The `digest` command line: one module per command group, each a thin adapter
(parse the options, make one call into the core, print the result).

    cli/base.py         exit statuses, settings and database on first use, errors as one line
    cli/run.py          run, preview
    cli/subscribers.py  subscribers add/remove/list/show/import/export
    cli/feeds.py        feeds add/remove/list/check/import/export
    cli/serve.py        serve (the unsubscribe and preferences pages)
    cli/operations.py   check, schedule, runs, health, db upgrade, secret

Modules import only click at the top; everything else is imported inside the
command that needs it, so `digest --help` starts fast.
"""

from __future__ import annotations

import click

from digest import __version__
from digest.cli import feeds, operations, run, serve, subscribers
from digest.cli.base import Context, DigestGroup, pass_ctx


@click.group(cls=DigestGroup)
@click.version_option(__version__, prog_name="digest")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@pass_ctx
def cli(ctx: Context, verbose: bool) -> None:
    """Collect the day's news from your feeds and email a digest to subscribers."""
    from digest.logs import configure_logging

    ctx.verbose = verbose
    configure_logging("auto", verbose=verbose)


for _module in (run, subscribers, serve, feeds, operations):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="digest")
