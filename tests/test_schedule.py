"""`digest schedule` as a subprocess on a sped-up test clock, sending to a real SMTP server."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from support import FeedServer, MailSink, digest_env, invoke, spawn

DAY1 = datetime.fromisoformat("2026-03-19T00:00:00+00:00")


def _write_feed(feed_server: FeedServer, days: int = 1) -> str:
    """An RSS feed with the stories of the first `days` mornings, one topic a day."""
    items = []
    for day, topic in list(enumerate(("Harbour bridge reopens", "River festival opens")))[:days]:
        for hour in range(1, 6):
            published = DAY1 + timedelta(days=day, hours=hour)
            items.append(
                f"<item><title>{topic}, report {hour}</title>"
                f"<link>https://news.example.com/{day}/{hour}</link>"
                f"<pubDate>{format_datetime(published)}</pubDate>"
                f"<description>Day {day + 1} story {hour}.</description></item>"
            )
    (feed_server.root / "days.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Two Days</title>'
        f"<link>https://news.example.com/</link>{''.join(items)}</channel></rss>"
    )
    return feed_server.url("days.xml")


def _schedule_env(
    tmp_path: Path, feeds: str, sink: MailSink, start: str, speed: str
) -> dict[str, str]:
    """Settings for `digest schedule` at 06:30 UTC on a test clock from `start`."""
    return digest_env(
        tmp_path,
        DIGEST_FEEDS=feeds,
        DIGEST_SEND_AT="06:30",
        DIGEST_TIMEZONE="UTC",
        DIGEST_CLOCK_START=start,
        DIGEST_CLOCK_SPEED=speed,
        **sink.env(),
    )


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError(f"digest schedule ignored SIGTERM:\n{stderr}") from None
    return process.returncode, stderr


def _per_recipient(sink: MailSink) -> Counter[str]:
    return Counter(rcpt for rcpts, _ in sink.envelopes for rcpt in rcpts)


def test_two_mornings_send_one_edition_each(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    # One real second is two simulated hours: a day goes by in 12 seconds. The clock starts
    # an hour (half a real second) before the send, so a slow start cannot pass it.
    env = _schedule_env(
        tmp_path, _write_feed(feed_server), smtp_sink, "2026-03-19T05:30:00+00:00", "7200"
    )
    for address in ("ann@example.com", "bob@example.org"):
        assert invoke(["subscribers", "add", address], env, tmp_path).returncode == 0

    process = spawn(["schedule"], env, tmp_path)
    try:
        assert _wait_for(lambda: len(smtp_sink.envelopes) >= 2, timeout=30)
        # The second morning's stories are published after the first edition went out.
        _write_feed(feed_server, days=2)
        assert _wait_for(lambda: len(smtp_sink.envelopes) >= 4, timeout=60)
        # Half a simulated day more: nothing else may go out.
        time.sleep(6)
    finally:
        status, log = _stop(process)

    assert status == 0, log
    assert _per_recipient(smtp_sink) == {"ann@example.com": 2, "bob@example.org": 2}
    subjects = Counter(m["Subject"] for m in smtp_sink.messages)
    assert len(subjects) == 2 and all(n == 2 for n in subjects.values()), subjects
    assert any("19 Mar" in s for s in subjects) and any("20 Mar" in s for s in subjects)
    bodies = {m["Subject"]: m.get_body(("plain",)).get_content() for m in smtp_sink.messages}
    day1 = next(b for s, b in bodies.items() if "19 Mar" in s)
    day2 = next(b for s, b in bodies.items() if "20 Mar" in s)
    assert "Harbour bridge" in day1 and "River festival" not in day1
    assert "River festival" in day2
    # The morning before the first start was too long ago to catch up: logged, not sent.
    assert "missed the run due at 2026-03-18T06:30:00+00:00" in log, log


def test_sigterm_mid_send_exits_cleanly_and_restart_sends_nothing_twice(
    tmp_path: Path, feed_server: FeedServer, slow_smtp_sink: MailSink
) -> None:
    env = _schedule_env(
        tmp_path, _write_feed(feed_server), slow_smtp_sink, "2026-03-19T06:29:58+00:00", "1"
    )
    addresses = [f"reader{n:03d}@example.com" for n in range(120)]
    csv = tmp_path / "subscribers.csv"
    csv.write_text("email\n" + "\n".join(addresses) + "\n")
    imported = invoke(["subscribers", "import", str(csv)], env, tmp_path)
    assert imported.returncode == 0, imported.stderr

    first = spawn(["schedule"], env, tmp_path)
    try:
        assert _wait_for(lambda: len(slow_smtp_sink.envelopes) >= 10, timeout=60)
    finally:
        status, log = _stop(first)
    assert status == 0, log
    sent_before = len(slow_smtp_sink.envelopes)
    assert 10 <= sent_before < len(addresses), "SIGTERM did not stop the send part-way"

    # Restarted inside the grace period: the unfinished morning is caught up.
    env["DIGEST_CLOCK_START"] = "2026-03-19T06:45:00+00:00"
    second = spawn(["schedule"], env, tmp_path)
    try:
        assert _wait_for(lambda: len(slow_smtp_sink.envelopes) >= len(addresses), timeout=90)
        time.sleep(1)
    finally:
        status, log = _stop(second)
    assert status == 0, log
    assert "catching up the run due at 2026-03-19T06:30:00+00:00" in log
    assert _per_recipient(slow_smtp_sink) == dict.fromkeys(addresses, 1)


def test_a_scheduler_without_its_secret_key_stops_at_once_with_the_fix(tmp_path: Path) -> None:
    env = {**digest_env(tmp_path), "DIGEST_SECRET_KEY": ""}

    result = invoke(["schedule"], env, tmp_path)

    assert result.returncode == 2 and "DIGEST_SECRET_KEY is not set" in result.stderr
    assert "digest secret" in result.stderr and "Traceback" not in result.stderr


def test_a_failed_scheduled_run_is_one_readable_line_and_the_scheduler_goes_on(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    """A setting the server rejects (a login it does not offer) fails each morning's run
    with the operator's message, never a traceback, and the process keeps running."""
    env = _schedule_env(
        tmp_path, _write_feed(feed_server), smtp_sink, "2026-03-19T06:00:00+00:00", "3600"
    )
    env["DIGEST_SMTP_USERNAME"] = "mailer"
    assert invoke(["subscribers", "add", "ann@example.com"], env, tmp_path).returncode == 0

    process = spawn(["schedule"], env, tmp_path)
    try:
        runs = lambda: invoke(["runs"], env, tmp_path).stdout  # noqa: E731
        assert _wait_for(lambda: " error " in runs(), timeout=30), runs()
        assert process.poll() is None  # still scheduling the next morning
    finally:
        status, log = _stop(process)

    assert status == 0, log
    assert "scheduled run failed: the SMTP server" in log and "offers no login" in log
    assert "Traceback" not in log and smtp_sink.envelopes == []
