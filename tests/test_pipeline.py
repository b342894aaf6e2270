"""The whole pipeline end to end, as an operator runs it."""

from __future__ import annotations

import json
from pathlib import Path

from support import (
    SAMPLE_FEEDS,
    SAMPLE_NOW,
    FeedServer,
    MailSink,
    digest_env,
    free_port,
    invoke,
    run_digest,
    serve_samples,
)

SUBSCRIBERS = ["ann@example.com", "Bob@Example.org", "carol@example.net"]


def test_run_sends_one_multipart_message_to_each_subscriber(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    feeds = serve_samples(feed_server)
    env = digest_env(tmp_path, DIGEST_FEEDS=",".join(feeds), **smtp_sink.env())
    for address in SUBSCRIBERS:
        added = invoke(["subscribers", "add", address], env, tmp_path)
        assert added.returncode == 0, added.stderr

    # In a process of its own, as an operator runs it; the other tests run in-process.
    result = run_digest(["run", "--now", SAMPLE_NOW], env, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "sent 3" in result.stdout
    recipients = sorted(rcpt for rcpts, _ in smtp_sink.envelopes for rcpt in rcpts)
    assert recipients == sorted(a.lower() for a in SUBSCRIBERS)
    for message in smtp_sink.messages:
        assert message.get_content_type() == "multipart/alternative"
        text, html = message.get_payload()
        assert text.get_content_type() == "text/plain"
        assert html.get_content_type() == "text/html"
        for body in (text.get_content(), html.get_content()):
            assert "Storm Edda" in body
            assert "Migration Pact" in body or "Migration Deal" in body
        assert message["Message-ID"] and message["Date"] and message["Subject"]
        assert message["To"].addresses[0].addr_spec in recipients


def test_dead_and_malformed_feeds_are_reported_and_do_not_stop_the_run(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    good = serve_samples(feed_server)
    (feed_server.root / "broken.xml").write_text("<html><body>404 page, not a feed</body>")
    dead = f"http://127.0.0.1:{free_port()}/feed.xml"
    broken = feed_server.url("broken.xml")
    env = digest_env(tmp_path, DIGEST_FEEDS=",".join([*good, dead, broken]), **smtp_sink.env())

    preview = invoke(["preview", "--format", "json", "--now", SAMPLE_NOW], env, tmp_path)

    assert preview.returncode == 0, preview.stderr
    edition = json.loads(preview.stdout)
    feeds = {f["url"]: f for f in edition["feeds"]}
    assert feeds[dead]["ok"] is False and "connect" in feeds[dead]["error"].lower()
    assert feeds[broken]["ok"] is False and "feed" in feeds[broken]["error"].lower()
    assert all(feeds[url]["ok"] and feeds[url]["articles"] > 0 for url in good)
    assert dead in preview.stderr and broken in preview.stderr
    assert edition["themes"] and all(t["articles"] for t in edition["themes"])
    for theme in edition["themes"]:
        for article in theme["articles"]:
            assert set(article) >= {"title", "url", "source", "published", "summary"}
            assert article["published"].endswith("+00:00")
    assert edition["window"]["end"] == SAMPLE_NOW

    invoke(["subscribers", "add", "ann@example.com"], env, tmp_path)
    sent = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert len(smtp_sink.envelopes) == 1


def test_dry_run_on_bundled_samples_writes_a_preview_without_smtp(tmp_path: Path) -> None:
    env = digest_env(tmp_path, DIGEST_SMTP_PORT=str(free_port()))

    result = invoke(["run", "--dry-run", "--now", SAMPLE_NOW], env, tmp_path)

    assert result.returncode == 0, result.stderr
    written = [
        Path(line.removeprefix("wrote "))
        for line in result.stdout.splitlines()
        if line.startswith("wrote ")
    ]
    assert {p.name for p in written} >= {"digest.html", "digest.txt", "digest.eml"}
    html = (tmp_path / "preview" / "digest.html").read_text()
    assert "Storm Edda" in html and "Global Wire" in html
    assert "<script" not in html.lower()


def test_wrong_settings_stop_with_one_line_per_variable(tmp_path: Path) -> None:
    env = digest_env(
        tmp_path,
        DIGEST_SMTP_PORT="not-a-port",
        DIGEST_TIMEZONE="Mars/Olympus",
        DIGEST_SMTP_SECURITY="ssl",
        DIGEST_SMTP_PASSWORD="hunter2-secret",
    )

    result = invoke(["run", "--dry-run"], env, tmp_path)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    assert any("DIGEST_SMTP_PORT" in line for line in lines)
    assert any("DIGEST_TIMEZONE" in line and "IANA" in line for line in lines)
    assert any("DIGEST_SMTP_SECURITY" in line and "starttls" in line for line in lines)
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_invalid_address_is_refused_clearly(tmp_path: Path) -> None:
    env = digest_env(tmp_path)

    result = invoke(["subscribers", "add", "not an address"], env, tmp_path)

    assert result.returncode == 1
    assert "invalid email address" in result.stderr and "Traceback" not in result.stderr
    listed = invoke(["subscribers", "list"], env, tmp_path)
    assert listed.stdout.strip() == ""


def test_unreachable_smtp_server_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    env = digest_env(
        tmp_path,
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(free_port()),
        DIGEST_SMTP_SECURITY="none",
        DIGEST_SMTP_USERNAME="mailer",
        DIGEST_SMTP_PASSWORD="hunter2-secret",
    )
    invoke(["subscribers", "add", "ann@example.com"], env, tmp_path)

    result = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)

    assert result.returncode == 1
    assert "cannot reach the SMTP server" in result.stderr
    assert "DIGEST_SMTP_HOST" in result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_feeds_and_subscribers_are_managed_from_the_cli(tmp_path: Path) -> None:
    env = digest_env(tmp_path)
    # --no-check: the test has no internet to fetch it from (tests/test_hostile_ops.py checks).
    add = ["feeds", "add", "--no-check", "https://example.com/rss"]
    assert invoke(add, env, tmp_path).returncode == 0
    duplicate = invoke(add, env, tmp_path)
    assert duplicate.returncode == 1 and "already listed" in duplicate.stderr
    assert "https://example.com/rss" in invoke(["feeds", "list"], env, tmp_path).stdout
    assert invoke(["feeds", "remove", "https://example.com/rss"], env, tmp_path).returncode == 0
    assert invoke(["feeds", "list"], env, tmp_path).stdout.strip() == ""

    assert invoke(["subscribers", "add", "Ann@Example.com"], env, tmp_path).returncode == 0
    again = invoke(["subscribers", "add", "ann@example.com"], env, tmp_path)
    assert again.returncode == 1 and "already subscribed" in again.stderr
    assert invoke(["subscribers", "remove", "ANN@example.com"], env, tmp_path).returncode == 0
    assert invoke(["subscribers", "list"], env, tmp_path).stdout.strip() == ""


def test_feeds_named_only_in_settings_are_not_remembered_as_listed(tmp_path: Path) -> None:
    env = digest_env(tmp_path)
    samples = invoke(["preview", "--format", "json", "--now", SAMPLE_NOW], env, tmp_path)
    assert samples.returncode == 0, samples.stderr
    assert len(json.loads(samples.stdout)["feeds"]) == 3
    assert invoke(["feeds", "list"], env, tmp_path).stdout.strip() == ""

    one = str(SAMPLE_FEEDS / "global-wire.rss.xml")
    env["DIGEST_FEEDS"] = one
    named = invoke(["preview", "--format", "json", "--now", SAMPLE_NOW], env, tmp_path)
    assert [f["url"] for f in json.loads(named.stdout)["feeds"]] == [one]

    # Listing it later makes it a listed feed; previews never count toward its health.
    del env["DIGEST_FEEDS"]
    assert invoke(["feeds", "add", one], env, tmp_path).returncode == 0
    listed = invoke(["feeds", "list"], env, tmp_path).stdout
    assert listed == f"{one}\tnot fetched by a run yet\n"


def test_logs_off_a_terminal_are_json_lines_carrying_the_edition_id(tmp_path: Path) -> None:
    env = digest_env(tmp_path)

    result = invoke(["run", "--dry-run", "--now", SAMPLE_NOW], env, tmp_path)

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines and all(line["edition"] == "digest/2026-03-19" for line in lines)
    assert any("collected 20 articles" in line["message"] for line in lines)
    assert {"time", "level", "logger", "message"} <= set(lines[0])
