"""`digest check` against a real SMTP server, real feeds and a real SQLite file."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from support import SAMPLE_FEEDS, FeedServer, MailSink, digest_env, free_port, invoke


def test_check_reports_every_part_ok_and_sends_nothing(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    feed = SAMPLE_FEEDS / "global-wire.rss.xml"
    shutil.copy(feed, feed_server.root / feed.name)
    env = digest_env(tmp_path, DIGEST_FEEDS=feed_server.url(feed.name), **smtp_sink.env())

    result = invoke(["check"], env, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in (
        "settings",
        "secret key",
        "database",
        "smtp",
        f"feed {feed_server.url(feed.name)}",
    ):
        assert any(line.startswith(f"ok   {name}:") for line in lines), (name, lines)
    assert smtp_sink.envelopes == []


def test_check_names_each_failure_and_its_fix_without_secrets(tmp_path: Path) -> None:
    env = digest_env(
        tmp_path,
        DIGEST_SECRET_KEY="",
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(free_port()),
        DIGEST_SMTP_SECURITY="none",
        DIGEST_SMTP_USERNAME="mailer",
        DIGEST_SMTP_PASSWORD="hunter2-secret",
        DIGEST_FEEDS=f"http://127.0.0.1:{free_port()}/gone.xml",
    )

    result = invoke(["check"], env, tmp_path)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    secret = next(line for line in lines if "secret key" in line)
    assert secret.startswith("FAIL") and "digest secret" in secret
    smtp = next(line for line in lines if " smtp:" in line)
    assert smtp.startswith("FAIL") and "DIGEST_SMTP_HOST" in smtp
    feed = next(line for line in lines if "gone.xml" in line)
    assert feed.startswith("FAIL") and "digest feeds remove" in feed
    assert any(line.startswith("ok   database:") for line in lines)
    assert "hunter2" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_check_reports_bad_settings_one_line_each(tmp_path: Path) -> None:
    env = digest_env(tmp_path, DIGEST_SEND_AT="25:99", DIGEST_WINDOW_HOURS="-1")

    result = invoke(["check"], env, tmp_path)

    assert result.returncode == 2
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL settings")]
    assert {line.split(":")[1].strip() for line in failures} == {
        "DIGEST_SEND_AT",
        "DIGEST_WINDOW_HOURS",
    }


def test_health_follows_the_scheduler_heartbeat(tmp_path: Path) -> None:
    env = digest_env(tmp_path)
    stale = invoke(["health"], env, tmp_path)
    assert stale.returncode == 1 and "no recent heartbeat" in stale.stderr

    (tmp_path / ".digest-heartbeat").write_text(datetime.now(UTC).isoformat())
    fresh = invoke(["health"], env, tmp_path)
    assert fresh.returncode == 0 and fresh.stdout.strip() == "healthy"
