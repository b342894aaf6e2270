"""Settings: `.env.example` documents every one, and copying it as is changes nothing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from support import REPO, digest_env, invoke

from digest.config import Settings


def test_env_example_lists_every_setting_under_a_comment() -> None:
    text = (REPO / ".env.example").read_text()
    listed = re.findall(r"^DIGEST_(\w+)=", text, re.MULTILINE)
    assert sorted(name.lower() for name in listed) == sorted(Settings.model_fields)
    # Each setting, or each small group of related ones, is explained by the comment above.
    blocks = re.findall(r"((?:^#.*\n)*)((?:^DIGEST_\w+=.*\n)+)", text, re.MULTILINE)
    assert all(comment for comment, _ in blocks)


def test_a_copied_env_example_runs_the_dry_run_on_defaults(tmp_path: Path) -> None:
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    env = digest_env(tmp_path)

    result = invoke(["run", "--dry-run", "--now", "2026-03-19T07:00:00Z"], env, tmp_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "preview" / "digest.html").is_file()
