"""The command line as a whole: every command documented, and `--help` light."""

from __future__ import annotations

import re
import subprocess
import sys

import click
from support import REPO

from digest.cli import cli


def _leaves(group: click.Group, prefix: str) -> list[tuple[str, str]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.extend(_leaves(command, f"{prefix} {name}"))
        else:
            found.append((prefix, name))
    return found


def test_every_command_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    missing = []
    commands = _leaves(cli, "digest")
    assert len(commands) > 20 and ("digest db", "upgrade") in commands
    for prefix, name in commands:
        # `digest feeds add|remove|list` in the table names three commands at once.
        alternatives = re.findall(rf"`{re.escape(prefix)} ([\w\\|-]+)", readme)
        named = {part for alt in alternatives for part in alt.replace("\\", "").split("|")}
        if name not in named:
            missing.append(f"{prefix} {name}")
    assert not missing, f"commands the README does not name: {missing}"


def test_help_imports_no_database_models_or_stage() -> None:
    """`digest --help` starts fast because it loads only click (bench/startup.py times it)."""
    code = (
        "import sys\n"
        "from digest.cli import main\n"
        "sys.argv = ['digest', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('sqlalchemy', 'pydantic', 'alembic', 'httpx', 'jinja2', 'numpy', 'lxml')\n"
        "print('loaded:', *(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert "Usage: digest" in result.stdout and "subscribers" in result.stdout
    assert result.stderr.strip() == "loaded:", result.stderr
