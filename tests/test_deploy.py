"""The deployment files: no Docker engine runs in CI, so the Dockerfile is read, not built."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent


def _instructions(path: Path) -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _exec_form(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def test_dockerfile_runs_the_scheduler_as_a_non_root_user_with_a_healthcheck() -> None:
    steps = _instructions(REPO / "Dockerfile")
    keywords = [k for k, _ in steps]

    base = next(args for k, args in steps if k == "FROM")
    assert re.match(r"python:3\.1[1-9]-slim", base), base

    users = [args for k, args in steps if k == "USER"]
    assert users and users[-1] not in {"root", "0", "0:0"}
    assert keywords.index("USER") < keywords.index("CMD")

    healthcheck = next(args for k, args in steps if k == "HEALTHCHECK")
    command = _exec_form(healthcheck.split("CMD", 1)[1].strip())
    assert command == ["digest", "health"]

    cmd = [args for k, args in steps if k == "CMD"]
    assert len(cmd) == 1 and _exec_form(cmd[0]) == ["digest", "schedule"]

    runs = " ".join(args for k, args in steps if k == "RUN")
    assert "--require-hashes -r requirements.lock" in runs
    assert "pip install --no-deps ." in runs


def test_lock_file_pins_every_runtime_dependency_with_hashes() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lock = (REPO / "requirements.lock").read_text()
    pinned = {
        canonicalize_name(m.group(1))
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==\S+", lock, re.MULTILINE)
    }
    wanted = {canonicalize_name(Requirement(dep).name) for dep in project["dependencies"]}
    assert wanted <= pinned, f"not locked: {sorted(wanted - pinned)}"
    assert lock.count("--hash=sha256:") >= len(pinned)


def test_compose_and_kubernetes_examples_are_valid_and_use_the_image_as_meant() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert {"digest", "mailpit"} <= set(compose["services"])
    assert compose["services"]["digest"]["environment"]["DIGEST_SMTP_HOST"] == "mailpit"

    for name in ("cronjob.yaml", "indexed-job.yaml"):
        manifest = yaml.safe_load((REPO / "deploy" / "k8s" / name).read_text())
        spec = (
            manifest["spec"]["jobTemplate"]["spec"]
            if manifest["kind"] == "CronJob"
            else (manifest["spec"])
        )
        assert spec["completionMode"] == "Indexed"
        container = spec["template"]["spec"]["containers"][0]
        assert (
            "--shard ${JOB_COMPLETION_INDEX}/" + str(spec["completions"])
            in container["command"][-1]
        )


def test_systemd_and_cron_examples_call_digest_run() -> None:
    service = (REPO / "deploy" / "digest.service").read_text()
    timer = (REPO / "deploy" / "digest.timer").read_text()
    cron = (REPO / "deploy" / "crontab").read_text()
    assert re.search(r"^ExecStart=\S*digest run$", service, re.MULTILINE)
    assert re.search(r"^OnCalendar=", timer, re.MULTILINE) and "Persistent=true" in timer
    assert re.search(r"^\S+ \S+ \* \* \* .*digest run", cron, re.MULTILINE)


def test_readme_says_how_the_image_is_built_and_run() -> None:
    readme = (REPO / "README.md").read_text()
    assert "docker build -t digest ." in readme
    assert "docker run" in readme
