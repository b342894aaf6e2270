"""The daily job as code: `run_edition` builds once and sends to the real SMTP sink,
reuses the stored edition, refuses a second sender before fetching anything, and
the scheduler's marks send only to whoever is due."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest
from support import SAMPLE_NOW, FeedServer, MailSink, serve_samples

from digest import job
from digest.config import Settings, load_settings
from digest.db import Database
from digest.deliver.run import send_lock
from digest.errors import LockHeld
from digest.models import Subscriber
from digest.schedule import edition_sent, send_due
from digest.states import DeliveryState, RunStatus

NOW = datetime.fromisoformat(SAMPLE_NOW)


def _settings(tmp_path: Path, sink: MailSink, feeds: list[str], **overrides) -> Settings:
    return load_settings(
        database_url=f"sqlite:///{tmp_path / 'digest.db'}",
        smtp_host=sink.host,
        smtp_port=sink.port,
        smtp_security="none",
        secret_key="test-secret-key-not-for-production",
        feeds=",".join(feeds),
        **overrides,
    )


def test_the_edition_id_is_the_list_and_the_local_date(tmp_path: Path) -> None:
    settings = load_settings(timezone="Pacific/Auckland", list_id="morning", window_hours=12)
    day = job.EditionDay.of(settings, NOW)  # 07:00 UTC is 20:00 in Auckland

    assert day.id == "morning/2026-03-19" and day.end == NOW
    assert (day.end - day.start).total_seconds() == 12 * 3600
    assert job.EditionDay.of(settings, NOW, since=datetime(2026, 3, 1)).start.day == 1


def test_run_edition_builds_once_and_sends_each_subscriber_once(
    tmp_path: Path, smtp_sink: MailSink, db: Database, feed_server: FeedServer
) -> None:
    settings = _settings(tmp_path, smtp_sink, serve_samples(feed_server))
    db.subscribers.add(Subscriber(email="ann@example.com"))
    db.subscribers.add(Subscriber(email="bob@example.com", topics_include=["no such topic"]))

    first = job.run_edition(settings, db, now=NOW)
    stored = db.editions.load("digest/2026-03-19")
    for path in feed_server.root.glob("*.xml"):
        path.unlink()  # a rerun must not need the feeds: it reuses the stored edition
    second = job.run_edition(settings, db, now=NOW)

    assert first.status is RunStatus.done and (first.sent, first.skipped) == (1, 1)
    assert second.status is RunStatus.done and (second.sent, second.skipped) == (0, 2)
    assert stored is not None and stored.themes, "the built edition is stored"
    assert [m["To"].addresses[0].addr_spec for m in smtp_sink.messages] == ["ann@example.com"]
    assert db.ledger.states("digest/2026-03-19") == {
        DeliveryState.sent: 1,
        DeliveryState.skipped: 1,
    }
    assert [r.status for r in db.ledger.runs_of("digest/2026-03-19")] == [RunStatus.done] * 2


def test_a_second_sender_is_refused_before_any_feed_is_fetched(
    tmp_path: Path, smtp_sink: MailSink, db: Database, feed_server: FeedServer
) -> None:
    settings = _settings(tmp_path, smtp_sink, [feed_server.url("never-fetched.xml")])
    db.subscribers.add(Subscriber(email="ann@example.com"))
    db.ledger.acquire_lock(send_lock("digest/2026-03-19"), "other-host:1", 60)

    with pytest.raises(LockHeld, match="edition digest/2026-03-19 is already being sent"):
        job.run_edition(settings, db, now=NOW)

    assert db.editions.load("digest/2026-03-19") is None and not smtp_sink.envelopes
    assert db.feeds.health(include_unlisted=True) == [], "no feed was fetched"


def test_scheduled_marks_send_only_to_whoever_is_due(
    tmp_path: Path, smtp_sink: MailSink, db: Database, feed_server: FeedServer
) -> None:
    settings = _settings(tmp_path, smtp_sink, serve_samples(feed_server))
    db.subscribers.add(Subscriber(email="daily@example.com"))
    db.subscribers.add(Subscriber(email="late@example.com", delivery_hour=9))
    stop = threading.Event()

    assert not edition_sent(settings, db, NOW)
    hourly_early = send_due(settings, db, NOW, hourly=True, stop=stop)  # 07:00: not 09:00 yet
    daily = send_due(settings, db, NOW, hourly=False, stop=stop)
    daily_again = send_due(settings, db, NOW, hourly=False, stop=stop)
    hourly_later = send_due(settings, db, NOW.replace(hour=9), hourly=True, stop=stop)

    assert hourly_early is None and daily_again is None, "nobody waiting: no run at all"
    assert daily is not None and daily.sent == 1 and edition_sent(settings, db, NOW)
    assert hourly_later is not None and hourly_later.sent == 1
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp_sink.messages) == [
        "daily@example.com",
        "late@example.com",
    ]
    assert len(db.ledger.runs_of("digest/2026-03-19")) == 2
