"""The repositories tested directly, on a real SQLite file and on PostgreSQL (skipped
loudly when no server answers): what each stores, and the ledger's state changes
and locks that make sending exactly-once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from digest.db import Database
from digest.db.feeds import FeedOutcome
from digest.db.ledger import Outcome
from digest.errors import DigestError, LockHeld
from digest.models import Edition, Subscriber, SubscriberStatus
from digest.states import DeliveryState, RunStatus
from digest.subscribers import upsert

EDITION = "digest/2026-03-19"
NOW = datetime(2026, 3, 19, 7, 0, tzinfo=UTC)


def _add(db: Database, *emails: str, **fields) -> None:
    for email in emails:
        db.subscribers.add(Subscriber(email=email, **fields))


# Subscribers


def test_subscribers_are_found_whatever_the_case_and_added_once(any_db: Database) -> None:
    ann = any_db.subscribers.add(Subscriber(email="Ann@Example.com", name="Ann"))

    assert ann.email == "ann@example.com" and ann.created_at and ann.created_at.tzinfo
    assert any_db.subscribers.get(" ANN@example.com ") == ann
    with pytest.raises(DigestError, match="already subscribed"):
        any_db.subscribers.add(Subscriber(email="ann@example.com"))
    assert any_db.subscribers.remove("ann@EXAMPLE.com")
    assert not any_db.subscribers.remove("ann@example.com")
    assert any_db.subscribers.get("ann@example.com") is None


def test_subscribers_stream_in_order_by_status_and_count(any_db: Database) -> None:
    _add(any_db, *(f"r{i:02d}@example.com" for i in range(25)))
    any_db.subscribers.set_status("r03@example.com", SubscriberStatus.unsubscribed)

    active = [s.email for s in any_db.subscribers.iter(SubscriberStatus.active, batch=7)]

    assert len(active) == 24 and active == sorted(active) and "r03@example.com" not in active
    assert any_db.subscribers.count() == 25
    assert any_db.subscribers.count(SubscriberStatus.unsubscribed) == 1
    assert any_db.subscribers.count(where=lambda s: s.email.startswith("r1")) == 10


def test_saving_preferences_never_undoes_an_unsubscribe(any_db: Database) -> None:
    _add(any_db, "ann@example.com")
    page = any_db.subscribers.get("ann@example.com")
    any_db.subscribers.set_status("ann@example.com", SubscriberStatus.unsubscribed)

    saved = any_db.subscribers.update(page.model_copy(update={"topics_include": ["rail"]}))

    assert saved is not None and saved.topics_include == ["rail"]
    assert saved.status is SubscriberStatus.unsubscribed
    assert any_db.subscribers.update(Subscriber(email="nobody@example.com")) is None


def test_a_link_id_finds_its_subscriber_and_never_changes(any_db: Database) -> None:
    ann = any_db.subscribers.add(Subscriber(email="ann@example.com"))
    upsert(any_db.subscribers, [{"email": "bob@example.com"}, {"email": "cy@example.com"}])
    ids = {s.email: s.public_id for s in any_db.subscribers.iter()}

    assert len(set(ids.values())) == 3 and all("@" not in i for i in ids.values())
    assert any_db.subscribers.by_public_id(ann.public_id) == ann
    assert any_db.subscribers.by_public_id("no-such-id") is None
    # Saving preferences from a hand-built model keeps the stored id.
    any_db.subscribers.update(Subscriber(email="ann@example.com", topics_include=["rail"]))
    assert any_db.subscribers.get("ann@example.com").public_id == ann.public_id


def test_a_paused_subscriber_is_left_out_of_every_active_query_until_the_pause_ends(
    any_db: Database,
) -> None:
    _add(any_db, "ann@example.com", "bob@example.com", "cy@example.com")
    soon = datetime.now(UTC) + timedelta(days=7)
    any_db.subscribers.pause("ann@example.com", soon)
    any_db.subscribers.pause("bob@example.com", datetime.now(UTC) - timedelta(minutes=1))
    active = SubscriberStatus.active

    assert any_db.subscribers.get("ann@example.com").paused_until == soon
    assert [s.email for s in any_db.subscribers.iter(active)] == [
        "bob@example.com",
        "cy@example.com",
    ]
    assert any_db.subscribers.count(active) == 2 and any_db.subscribers.count() == 3
    assert any_db.ledger.undelivered_count(EDITION) == 2
    assert any_db.ledger.undelivered_count(EDITION, where=lambda s: True) == 2

    any_db.subscribers.pause("ann@example.com", None)
    assert any_db.subscribers.count(active) == 3
    assert any_db.subscribers.pause("nobody@example.com", soon) is None


def test_a_status_change_only_from_a_given_status_leaves_others_alone(any_db: Database) -> None:
    _add(any_db, "ann@example.com", "bob@example.com")
    any_db.subscribers.set_status("ann@example.com", SubscriberStatus.unsubscribed)
    any_db.subscribers.set_status("bob@example.com", SubscriberStatus.bounced)

    for email in ("ann@example.com", "bob@example.com"):
        any_db.subscribers.set_status(
            email, SubscriberStatus.active, only_from=SubscriberStatus.unsubscribed
        )

    assert any_db.subscribers.get("ann@example.com").status is SubscriberStatus.active
    assert any_db.subscribers.get("bob@example.com").status is SubscriberStatus.bounced


def test_bulk_upsert_adds_updates_and_keeps_unchanged_rows(any_db: Database) -> None:
    _add(any_db, "ann@example.com", name="Ann")
    before = any_db.subscribers.get("ann@example.com")

    counts = upsert(
        any_db.subscribers,
        [{"email": "ann@example.com", "name": "Ann"}, {"email": "bob@example.com"}],
        default_timezone="Europe/Paris",
    )

    assert (counts.added, counts.updated, counts.unchanged) == (1, 0, 1)
    assert any_db.subscribers.get("ann@example.com").updated_at == before.updated_at
    assert any_db.subscribers.get("bob@example.com").timezone == "Europe/Paris"


# Feeds


def test_feed_outcomes_keep_health_validators_and_entries(any_db: Database) -> None:
    feeds = any_db.feeds
    feeds.add("https://a.example.com/rss")
    with pytest.raises(DigestError, match="already listed"):
        feeds.add("https://a.example.com/rss")

    ok = FeedOutcome("https://a.example.com/rss", "A", etag='"1"', entries_json="[]")
    failures = feeds.record_outcomes([ok, FeedOutcome("https://b.example.com/rss", error="404")])
    again = feeds.record_outcomes([FeedOutcome("https://b.example.com/rss", error="404")])

    assert failures == {"https://a.example.com/rss": 0, "https://b.example.com/rss": 1}
    assert again == {"https://b.example.com/rss": 2}
    assert feeds.urls() == ["https://a.example.com/rss"], "feeds met only in settings stay unlisted"
    health = {f.url: f for f in feeds.health(include_unlisted=True)}
    assert health["https://a.example.com/rss"].title == "A"
    assert health["https://a.example.com/rss"].last_success is not None
    assert health["https://b.example.com/rss"].consecutive_failures == 2
    assert not health["https://b.example.com/rss"].listed
    assert feeds.cached("https://a.example.com/rss") == ("A", "[]")
    assert feeds.validators(["https://a.example.com/rss"]) == {
        "https://a.example.com/rss": ('"1"', None)
    }
    feeds.add("https://b.example.com/rss")  # listing a known feed keeps its health
    assert feeds.health()[-1].consecutive_failures == 2


def test_first_seen_is_recorded_once_and_read_back(any_db: Database) -> None:
    keys = [f"https://ex.com/{n}" for n in range(1200)]  # more than one IN chunk
    first = any_db.feeds.first_seen(keys[:10], NOW)
    later = any_db.feeds.first_seen(keys, NOW + timedelta(days=1))

    assert set(first.values()) == {NOW}
    assert all(later[k] == NOW for k in keys[:10])
    assert all(later[k] == NOW + timedelta(days=1) for k in keys[10:])


# Editions


def test_the_first_edition_stored_for_an_id_is_kept(any_db: Database) -> None:
    def edition(hour: int) -> Edition:
        stamp = NOW.replace(hour=hour)
        return Edition(
            id=EDITION,
            generated_at=stamp,
            window_start=stamp,
            window_end=stamp,
            themes=[],
            feeds=[],
        )

    assert any_db.editions.load(EDITION) is None
    any_db.editions.save(edition(6))
    any_db.editions.save(edition(7))
    assert any_db.editions.load(EDITION).generated_at == NOW.replace(hour=6)


def test_edition_ids_of_one_list_come_newest_first(any_db: Database) -> None:
    for edition_id in ("digest/2026-03-17", "digest/2026-03-19", "digest/2026-03-18",
                       "digest_x/2026-03-20", "other/2026-03-21"):  # fmt: skip
        any_db.editions.save(
            Edition(
                id=edition_id,
                generated_at=NOW,
                window_start=NOW,
                window_end=NOW,
                themes=[],
                feeds=[],
            )
        )

    assert any_db.editions.ids("digest/") == [
        "digest/2026-03-19",
        "digest/2026-03-18",
        "digest/2026-03-17",
    ]
    assert any_db.editions.ids("digest/", limit=1) == ["digest/2026-03-19"]
    assert any_db.editions.ids("dig%/") == []  # the prefix is literal, not a pattern


# The ledger


def test_a_copy_refused_for_good_is_undelivered_but_no_rerun_tries_it(any_db: Database) -> None:
    _add(any_db, "ann@example.com", "cy@example.com", "dee@example.com")
    ledger = any_db.ledger
    ledger.record_sending(
        EDITION, [(e, f"<{e}>") for e in ("ann@example.com", "cy@example.com")], []
    )
    with ledger.outcome_writer() as write:
        write(EDITION, [Outcome("cy@example.com", DeliveryState.failed, 1, "550 no such user")], 1)

    # ann is still sending and dee has no row: a rerun sends to both; cy is refused for good.
    everyone = lambda s: True  # noqa: E731  (the scheduler's path, subscriber by subscriber)
    for where in (None, everyone):
        assert ledger.undelivered_count(EDITION, where) == 3
        assert ledger.undelivered_count(EDITION, where, to_try=True) == 2


def test_deliveries_go_from_sending_to_their_outcome(any_db: Database) -> None:
    _add(any_db, "ann@example.com", "bob@example.com", "cy@example.com", "dee@example.com")
    ledger = any_db.ledger
    emails = ["ann@example.com", "bob@example.com", "cy@example.com"]
    ledger.record_sending(EDITION, [(e, f"<{e}>") for e in emails], [])
    ledger.record_skipped(EDITION, ["dee@example.com"])
    ledger.record_skipped(EDITION, ["dee@example.com"])  # a rerun records nothing twice

    assert {r.state for r in ledger.rows(EDITION, emails).values()} == {DeliveryState.sending}
    with ledger.outcome_writer() as write:
        bounced = write(
            EDITION,
            [
                Outcome("ann@example.com", DeliveryState.sent, 1),
                Outcome("bob@example.com", DeliveryState.deferred, 3, "451 busy"),
                Outcome("cy@example.com", DeliveryState.failed, 1, "550 no such user", bounce=True),
            ],
            1,
        )

    rows = ledger.rows(EDITION, [*emails, "dee@example.com", "nobody@example.com"])
    assert {e: r.state for e, r in rows.items()} == {
        "ann@example.com": DeliveryState.sent,
        "bob@example.com": DeliveryState.deferred,
        "cy@example.com": DeliveryState.failed,
        "dee@example.com": DeliveryState.skipped,
    }
    assert rows["ann@example.com"].message_id == "<ann@example.com>"
    assert rows["bob@example.com"].attempts == 3 and not rows["bob@example.com"].state.final
    assert bounced == ["cy@example.com"]
    assert any_db.subscribers.get("cy@example.com").status is SubscriberStatus.bounced
    assert ledger.states(EDITION) == {
        DeliveryState.sent: 1,
        DeliveryState.deferred: 1,
        DeliveryState.failed: 1,
        DeliveryState.skipped: 1,
    }
    # Only bob (deferred) is active and without the edition; cy bounced out of the list.
    assert ledger.undelivered_count(EDITION) == 1
    assert ledger.undelivered_count(EDITION, lambda s: s.email != "bob@example.com") == 0

    ledger.record_sending(EDITION, [], [("bob@example.com", "<bob-again>")])
    again = ledger.rows(EDITION, ["bob@example.com"])["bob@example.com"]
    assert again.state is DeliveryState.sending and again.message_id == "<bob-again>"


def test_a_delivery_resets_the_bounce_count(any_db: Database) -> None:
    _add(any_db, "ann@example.com")
    ledger = any_db.ledger
    for day, state in (("18", DeliveryState.failed), ("19", DeliveryState.sent)):
        edition = f"digest/2026-03-{day}"
        ledger.record_sending(edition, [("ann@example.com", f"<{day}>")], [])
        with ledger.outcome_writer() as write:
            outcome = Outcome("ann@example.com", state, 1, bounce=state is DeliveryState.failed)
            assert write(edition, [outcome], 2) == []
        ledger.reset_bounces(edition)

    # Two bounces in a row would mark her bounced; the delivery between reset the count.
    ledger.record_sending("digest/2026-03-20", [("ann@example.com", "<20>")], [])
    with ledger.outcome_writer() as write:
        failed = Outcome("ann@example.com", DeliveryState.failed, 1, bounce=True)
        assert write("digest/2026-03-20", [failed], 2) == []
    assert any_db.subscribers.get("ann@example.com").status is SubscriberStatus.active


def test_a_lock_is_refused_while_held_and_taken_over_once_expired(any_db: Database) -> None:
    ledger = any_db.ledger
    ledger.acquire_lock("send x", "host:1", 60)
    with pytest.raises(LockHeld, match=r"send x is held by host:1 since .* UTC"):
        ledger.acquire_lock("send x", "host:2", 60)
    with pytest.raises(LockHeld):
        ledger.check_lock("send x")
    assert ledger.renew_lock("send x", "host:1", 0.2)
    assert not ledger.renew_lock("send x", "host:2", 60), "only the owner renews"

    time.sleep(0.3)
    ledger.check_lock("send x")  # expired: nobody holds it
    ledger.acquire_lock("send x", "host:2", 60)
    assert not ledger.renew_lock("send x", "host:1", 60), "the crashed owner lost it"
    ledger.release_lock("send x", "host:1")  # not theirs: no effect
    with pytest.raises(LockHeld, match="host:2"):
        ledger.check_lock("send x")
    ledger.release_lock("send x", "host:2")
    ledger.check_lock("send x")


def test_runs_are_typed_rows_with_their_reports(any_db: Database) -> None:
    ledger = any_db.ledger
    first = ledger.start_run(EDITION)
    second = ledger.start_run(EDITION, shard="1/4")
    ledger.finish_run(first, RunStatus.partial, {"sent": 3})

    runs = ledger.runs_of(EDITION)
    assert [(r.id, r.status, r.shard) for r in runs] == [
        (first, RunStatus.partial, None),
        (second, RunStatus.running, "1/4"),
    ]
    assert runs[0].report == {"sent": 3} and runs[0].finished_at >= runs[0].started_at
    assert runs[1].finished_at is None and runs[1].started_at.tzinfo is not None
    assert [r.id for r in ledger.recent_runs(1)] == [second]
