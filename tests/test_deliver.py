"""Delivery: every subscriber once, through faults, kills and reruns, with bulk-sender headers.

Mail goes to a real aiosmtpd server on loopback (`MailSink` in tests/support.py) and the
assertions are on what it received and on the SQLite file, never on mocks.
"""

from __future__ import annotations

import base64
import email
import email.policy
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dkim
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from support import SAMPLE_NOW, MailSink, digest_env, invoke, serving, spawn

from digest.config import load_settings
from digest.db import Database
from digest.db.schema import subscribers
from digest.deliver import Composer, build_message
from digest.deliver.message import STANDIN_EMAIL, STANDIN_ID, STANDIN_NAME
from digest.deliver.run import send_edition
from digest.logs import subscriber_ref
from digest.models import (
    Article,
    DigestError,
    Edition,
    MailFormat,
    RenderedDigest,
    Subscriber,
    Theme,
)
from digest.states import RunStatus
from digest.tokens import make_token, read_token

SECRET = "test-secret-key-not-for-production"
HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "Auto-Submitted",
]


def make_edition(day: str = "2026-03-19") -> Edition:
    end = datetime.fromisoformat(f"{day}T07:00:00+00:00")
    themes = [
        Theme(
            label=f"Théme {t}",
            articles=[
                Article(
                    key=f"https://news.example.com/{day}/{t}/{a}",
                    title=f"Headline {t}.{a}: ministers meet · talks go on",
                    url=f"https://news.example.com/{day}/{t}/{a}?utm_source=rss",
                    source="Example News",
                    feed_url="https://news.example.com/feed",
                    published=end - timedelta(hours=a + 1),
                    summary="A summary long enough to wrap across lines. " * 3,
                )
                for a in range(3)
            ],
        )
        for t in range(2)
    ]
    return Edition(
        id=f"digest/{day}",
        generated_at=end,
        window_start=end - timedelta(days=1),
        window_end=end,
        themes=themes,
        feeds=[],
    )


def settings_for(tmp_path: Path, sink: MailSink, **overrides):
    values = {
        "database_url": f"sqlite:///{tmp_path / 'digest.db'}",
        "smtp_host": sink.host,
        "smtp_port": sink.port,
        "smtp_security": "none",
        "smtp_timeout": 1.0,
        "secret_key": SECRET,
        "from_address": "news@digest.example.org",
        "public_url": "https://digest.example.org",
        "send_connections": 3,
        "send_backoff": 0.01,
        "send_backoff_max": 0.05,
    }
    values.update(overrides)
    return load_settings(**values)


def add_subscribers(store: Database, emails: list[str], **columns) -> None:
    """Insert many subscribers in one statement (the CLI adds one at a time)."""
    stamp = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(
            subscribers.insert(),
            [{"email": e, "created_at": stamp, "updated_at": stamp, **columns} for e in emails],
        )


def delivery_states(db: Path, edition_id: str) -> dict[str, tuple[str, int, str | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT email, state, attempts, last_error FROM deliveries WHERE edition_id = ?",
            (edition_id,),
        ).fetchall()
    return {email: (state, attempts, error) for email, state, attempts, error in rows}


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_faults_on_a_schedule_still_give_each_deliverable_address_exactly_one_message(
    tmp_path: Path,
    db: Database,
) -> None:
    addresses = [f"reader{i:02d}@example.com" for i in range(60)]
    refused = {"reader07@example.com", "reader33@example.com"}
    with serving(
        refuse=refused,
        temporary={3: "451 4.3.0 try again later", 9: "421 4.7.0 closing", 21: "451 4.3.2 busy"},
        slow={14},
        slow_seconds=1.5,
        drop_after=8,
    ) as sink:
        settings = settings_for(tmp_path, sink, smtp_timeout=0.5, send_messages_per_connection=20)
        add_subscribers(db, addresses)

        report = send_edition(make_edition(), settings, db)

    received = sink.per_recipient()
    assert {a: received[a] for a in addresses if a not in refused} == {
        a: 1 for a in addresses if a not in refused
    }
    assert not set(received) & refused
    assert sink.faults_injected["451"] == 2 and sink.faults_injected["421"] == 1
    assert sink.faults_injected["slow"] == 1 and sink.faults_injected["drop"] >= 3
    states = delivery_states(tmp_path / "digest.db", "digest/2026-03-19")
    assert {a for a, (s, _, _) in states.items() if s == "sent"} == set(addresses) - refused
    for address in refused:
        state, attempts, error = states[address]
        assert (state, attempts) == ("failed", 1) and error.startswith("550")
    assert sum(attempts > 1 for _, attempts, _ in states.values()) >= 4
    assert (report.sent, report.failed, report.undelivered) == (58, 2, 2)
    assert report.retried >= 4 + 3  # four scheduled faults, three drops at least
    assert report.status == "partial"
    stored = db.ledger.runs_of("digest/2026-03-19")
    assert stored[-1].status == "partial"
    assert stored[-1].report["sent"] == 58 and stored[-1].report["retried"] == report.retried


def test_temporary_failures_end_deferred_and_a_rerun_sends_only_what_is_missing(
    tmp_path: Path,
    db: Database,
) -> None:
    addresses = ["ann@example.com", "bob@example.com", "cat@example.com"]
    with serving(defer={"bob@example.com"}) as sink:
        settings = settings_for(tmp_path, sink, send_attempts=3)
        add_subscribers(db, addresses)
        first = send_edition(make_edition(), settings, db)
        assert sink.per_recipient() == {"ann@example.com": 1, "cat@example.com": 1}
        assert (first.sent, first.failed, first.retried) == (2, 1, 2)
        states = delivery_states(tmp_path / "digest.db", "digest/2026-03-19")
        assert states["bob@example.com"][:2] == ("deferred", 3)
        assert states["bob@example.com"][2].startswith("451")

        sink.defer.clear()
        second = send_edition(make_edition(), settings, db)

    assert sink.per_recipient() == {a: 1 for a in addresses}
    assert (second.sent, second.skipped, second.status) == (1, 2, "done")
    states = delivery_states(tmp_path / "digest.db", "digest/2026-03-19")
    assert states["bob@example.com"][:2] == ("sent", 4)
    # The Message-ID recorded before the first try is the one that finally went out.
    with sqlite3.connect(tmp_path / "digest.db") as conn:
        (recorded,) = conn.execute(
            "SELECT message_id FROM deliveries WHERE email = 'bob@example.com'"
        ).fetchone()
    (bob,) = [m for m in sink.messages if m["To"].addresses[0].username == "bob"]
    assert bob["Message-ID"] == recorded


def test_an_address_refused_in_consecutive_editions_is_marked_bounced(
    tmp_path: Path, db: Database
) -> None:
    with serving(refuse={"gone@example.com", "flaky@example.com"}) as sink:
        settings = settings_for(tmp_path, sink, bounce_threshold=2)
        add_subscribers(db, ["gone@example.com", "flaky@example.com", "ann@example.com"])

        first = send_edition(make_edition("2026-03-18"), settings, db)
        sink.refuse.discard("flaky@example.com")
        second = send_edition(make_edition("2026-03-19"), settings, db)
        third = send_edition(make_edition("2026-03-20"), settings, db)

    assert (first.bounced, second.bounced, third.bounced) == (0, 1, 0)
    gone, flaky = (
        db.subscribers.get("gone@example.com"),
        db.subscribers.get("flaky@example.com"),
    )
    assert gone is not None and gone.status.value == "bounced"
    assert flaky is not None and flaky.status.value == "active"
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(subscribers.c.email, subscribers.c.consecutive_bounces))
        counts = {email: bounces for email, bounces in rows}
    assert counts == {"gone@example.com": 2, "flaky@example.com": 0, "ann@example.com": 0}
    # The third edition no longer went to the bounced address.
    assert third.subscribers == 2 and third.status == "done"
    assert sink.per_recipient() == {"ann@example.com": 3, "flaky@example.com": 2}


def test_received_messages_carry_every_bulk_sender_header_and_no_injected_ones(
    tmp_path: Path,
    db: Database,
) -> None:
    with serving() as sink:
        settings = settings_for(
            tmp_path,
            sink,
            from_name="Zoë's Morning Digest",
            list_unsubscribe_mailto="leave@digest.example.org",
            feedback_id="daily:digest:example-org",
        )
        db.subscribers.add(Subscriber(email="ann@example.com", name="Ann Ö'Neil"))
        db.subscribers.add(
            Subscriber(email="eve@example.com", name="Eve\r\nBcc: victim@example.net\r\n")
        )
        db.subscribers.add(Subscriber(email="tom@example.com", format=MailFormat.text))
        report = send_edition(make_edition(), settings, db)
        public_ids = {s.email: s.public_id for s in db.subscribers.iter()}

    assert report.sent == 3
    by_address = {rcpts[0]: raw for rcpts, raw in sink.envelopes}
    ids = set()
    for address, raw in by_address.items():
        message = parse(raw)
        assert not message.defects
        for name in HEADERS:
            assert len(message.get_all(name) or []) == 1, (address, name)
        assert message["To"].addresses[0].addr_spec == address
        assert message["From"].addresses[0].display_name == "Zoë's Morning Digest"
        assert "Théme 0" in message["Subject"] and "=?utf-8?" in raw.split(b"\r\n\r\n")[0].decode()
        assert message["Message-ID"].endswith("@digest.example.org>")
        ids.add(message["Message-ID"])
        assert message["List-Id"] == "Zoë's Morning Digest <digest.digest.example.org>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Feedback-ID"] == "daily:digest:example-org"
        assert message["Auto-Submitted"] == "auto-generated"
        url, mailto = [part.strip(" <>") for part in message["List-Unsubscribe"].split(",")]
        assert url.startswith("https://digest.example.org/unsubscribe?token=")
        assert read_token(SECRET, url.partition("token=")[2]).public_id == public_ids[address]
        assert mailto == "mailto:leave@digest.example.org?subject=unsubscribe"
        assert "Headline 0.0" in message.get_body(("plain",)).get_content()
        # Every line within SMTP's limit, every line break a CRLF.
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        assert b"\n" not in raw.replace(b"\r\n", b"")
    assert len(ids) == 3
    assert parse(by_address["ann@example.com"])["To"].addresses[0].display_name == "Ann Ö'Neil"
    eve = parse(by_address["eve@example.com"])
    assert eve["Bcc"] is None and "victim" not in str(eve["To"].addresses[0].addr_spec)
    assert parse(by_address["ann@example.com"]).get_content_type() == "multipart/alternative"
    assert parse(by_address["tom@example.com"]).get_content_type() == "text/plain"


def _rsa_key(tmp_path: Path) -> tuple[Path, bytes]:
    if shutil.which("openssl") is None:
        pytest.fail("the DKIM test needs the `openssl` command to make a key; install openssl")
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, base64.b64encode(public)


def test_a_dkim_signed_message_verifies_and_covers_the_unsubscribe_headers(
    tmp_path: Path,
    db: Database,
) -> None:
    key, public = _rsa_key(tmp_path)
    with serving() as sink:
        settings = settings_for(tmp_path, sink, dkim_key_file=key, dkim_selector="mail2026")
        db.subscribers.add(Subscriber(email="ann@example.com", name="Ann"))
        send_edition(make_edition(), settings, db)

    ((_, raw),) = sink.envelopes
    looked_up = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        looked_up.append(name)
        return b"v=DKIM1; k=rsa; p=" + public

    assert dkim.verify(raw, dnsfunc=dns)
    assert looked_up == [b"mail2026._domainkey.digest.example.org."]
    signature = parse(raw)["DKIM-Signature"].replace(" ", "").replace("\r\n", "")
    signed = signature.partition("h=")[2].partition(";")[0].lower().split(":")
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "to", "subject"} <= set(signed)
    tampered = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"X-Gone: 1")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_a_bad_dkim_key_is_a_clear_error_without_the_key(tmp_path: Path) -> None:
    key = tmp_path / "broken.pem"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END")
    env = digest_env(
        tmp_path, DIGEST_DKIM_KEY_FILE=str(key), DIGEST_DKIM_SELECTOR="s1", DIGEST_SMTP_PORT="1"
    )
    invoke(["subscribers", "add", "ann@example.com"], env, tmp_path)

    result = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)

    assert result.returncode == 1
    assert "DIGEST_DKIM_KEY_FILE" in result.stderr and "Traceback" not in result.stderr
    assert "c2VjcmV0" not in result.stderr + result.stdout
    missing = invoke(["run", "--now", SAMPLE_NOW], {**env, "DIGEST_DKIM_SELECTOR": ""}, tmp_path)
    assert missing.returncode == 2 and "DIGEST_DKIM_SELECTOR" in missing.stderr


def test_per_subscriber_values_in_the_bodies_survive_quoted_printable(tmp_path: Path) -> None:
    """Templates may show the reader's name, address and signed links: filled per subscriber."""
    with serving() as sink:
        settings = settings_for(tmp_path, sink)
    composer = Composer(settings)
    standin_url = f"https://digest.example.org/unsubscribe?token={make_token(SECRET, STANDIN_ID)}"

    def body(name: str, address: str, url: str, html: bool) -> str:
        words = "déjà vu, naïve café " * 6
        if html:
            return f'<p>Hello {name} ({address}), {words}</p>\n<a href="{url}">Unsubscribe</a>\n'
        return f"Hello {name} ({address}),\n{words}\nUnsubscribe: {url}\nBye {name}"

    rendered = RenderedDigest(
        subject="Today",
        text=body(STANDIN_NAME, STANDIN_EMAIL, standin_url, html=False),
        html=body(STANDIN_NAME, STANDIN_EMAIL, standin_url, html=True),
    )
    template = composer.template(rendered)
    reader = Subscriber(
        email="a.very.long.local.part.for.testing.soft.breaks+digest=1@sub.example.com",
        name='Zoë "Z" <Ó Briain> & co',
    )
    raw = composer.message(template, reader, "<m1@digest.example.org>")

    message = parse(raw)
    url = f"https://digest.example.org/unsubscribe?token={make_token(SECRET, reader.public_id)}"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert text == body(reader.name, reader.email, url, html=False)
    escaped = "Zoë &#34;Z&#34; &lt;Ó Briain&gt; &amp; co"
    assert html == body(escaped, reader.email, url, html=True)
    _, _, bodies = raw.partition(b"\r\n\r\n")
    assert max(len(line) for line in bodies.split(b"\r\n")) <= 76
    assert STANDIN_EMAIL.encode() not in raw and STANDIN_NAME.encode() not in raw


def test_the_pool_reconnects_after_the_messages_per_connection_setting(
    tmp_path: Path, db: Database
) -> None:
    with serving() as sink:
        settings = settings_for(
            tmp_path,
            sink,
            send_connections=2,
            send_messages_per_connection=5,
            send_rate=100,
            smtp_timeout=10,  # a loaded host must not add a reconnect of its own
        )
        add_subscribers(db, [f"r{i}@example.com" for i in range(30)])
        began = time.perf_counter()
        report = send_edition(make_edition(), settings, db)
        elapsed = time.perf_counter() - began

    assert report.sent == 30 and len(sink.per_recipient()) == 30
    # No connection carries more than 5. Each of the 2 workers reopens after its 5th, so
    # only its last connection (or one a retried timeout cut short) carries fewer: how
    # the 30 fall between the workers is the scheduler's choice (15/15 is 6, 13/17 is 7).
    carried = sink.per_connection()
    assert sum(carried) == 30 and max(carried) == 5
    assert sum(1 for n in carried if n < 5) <= 2 + report.retried
    assert elapsed >= 29 / 100  # 100 messages a second at most, however fast the server


def test_exit_statuses_nothing_to_send_partial_and_done(tmp_path: Path) -> None:
    with serving(refuse={"gone@example.com"}) as sink:
        env = digest_env(
            tmp_path,
            **sink.env(),
        )
        nothing = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)
        assert nothing.returncode == 4, nothing.stderr
        assert "no active subscribers, nothing to send" in nothing.stdout
        shard = invoke(["run", "--now", SAMPLE_NOW, "--shard", "1/2"], env, tmp_path)
        assert "no active subscribers in shard 1/2, nothing to send" in shard.stdout

        for address in ("ann@example.com", "gone@example.com"):
            invoke(["subscribers", "add", address], env, tmp_path)
        partial = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)
        assert partial.returncode == 3, partial.stderr
        assert "sent 1," in partial.stdout and "failed 1," in partial.stdout
        assert f"subscriber={subscriber_ref('gone@example.com')} state=failed" in partial.stderr
        assert "@example.com" not in partial.stderr, "addresses never reach the log"
        assert "Traceback" not in partial.stderr
        assert "1 failed for good (see the log), not retried" in partial.stderr
        assert "rerun retries" not in partial.stderr

        # A refusal is final: a rerun (the next cron line) tries nobody and is done.
        rerun = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)
        assert rerun.returncode == 0, rerun.stderr
        assert "sent 0," in rerun.stdout and "(1 failed for good, not retried)" in rerun.stdout
        assert "was partial" not in rerun.stderr
        assert sink.faults_injected["550"] == 1

        invoke(["subscribers", "remove", "gone@example.com"], env, tmp_path)
        done = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)
        assert done.returncode == 0, done.stderr
        assert "sent 0," in done.stdout and "skipped 1," in done.stdout

    assert sink.per_recipient() == {"ann@example.com": 1}


def test_a_refusal_that_bounces_the_subscriber_leaves_the_run_done(
    tmp_path: Path, db: Database
) -> None:
    """Bounced, they are no longer on the list: nobody active is without the edition."""
    with serving(refuse={"gone@example.com"}) as sink:
        settings = settings_for(tmp_path, sink, bounce_threshold=1)
        add_subscribers(db, ["ann@example.com", "gone@example.com"])
        report = send_edition(make_edition(), settings, db)

    assert (report.sent, report.failed, report.bounced) == (1, 1, 1)
    assert (report.undelivered, report.refused) == (0, 0)
    assert report.status is RunStatus.done


def test_an_unusable_record_is_not_counted_as_refused(tmp_path: Path, db: Database) -> None:
    """A record refused once, then made unusable by hand, is neither retried nor refused:
    the subscriber still waiting (a 4xx) is the one a rerun retries."""
    with serving(refuse={"ann@example.com"}, defer={"bob@example.com"}) as sink:
        settings = settings_for(tmp_path, sink, send_attempts=1)
        add_subscribers(db, ["ann@example.com", "bob@example.com", "cy@example.com"])
        send_edition(make_edition(), settings, db)
        with db.engine.begin() as conn:
            conn.execute(
                subscribers.update()
                .where(subscribers.c.email == "ann@example.com")
                .values(timezone="Mars/Olympus")
            )
        again = send_edition(make_edition(), settings, db)

    assert (again.unusable, again.undelivered, again.refused) == (1, 1, 0)
    assert again.status is RunStatus.partial
    assert sink.per_recipient() == {"cy@example.com": 1}


def test_sending_needs_the_secret_key_and_says_so(tmp_path: Path) -> None:
    env = {**digest_env(tmp_path), "DIGEST_SECRET_KEY": ""}
    invoke(["subscribers", "add", "ann@example.com"], env, tmp_path)

    result = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)

    assert result.returncode == 2
    assert "DIGEST_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr
    assert "collected" not in result.stderr  # said before any feed is fetched
    assert invoke(["run", "--dry-run", "--now", SAMPLE_NOW], env, tmp_path).returncode == 0


def test_a_concurrent_run_is_refused_and_a_dead_runs_lock_expires(
    tmp_path: Path, db: Database
) -> None:
    with serving() as sink:
        env = digest_env(
            tmp_path,
            **sink.env(),
        )
        invoke(["subscribers", "add", "ann@example.com"], env, tmp_path)
        held_until = datetime.now(UTC) + timedelta(minutes=5)
        with db.engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO locks VALUES (:n, 'mailhost:4242', :a, :e)"),
                {"n": "send digest/2026-03-19", "a": datetime.now(UTC), "e": held_until},
            )

        refused = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)
        assert refused.returncode == 5, refused.stderr
        assert "digest/2026-03-19 is already being sent" in refused.stderr
        assert "mailhost:4242" in refused.stderr and "Traceback" not in refused.stderr
        assert sink.envelopes == []

        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE locks SET expires_at = :e"), {"e": datetime.now(UTC)})
        taken_over = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)
        assert taken_over.returncode == 0, taken_over.stderr

    assert sink.per_recipient() == {"ann@example.com": 1}
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM locks")).scalar_one() == 0


def test_a_run_killed_part_way_then_run_again_leaves_everyone_one_message(
    tmp_path: Path,
    db: Database,
) -> None:
    """SIGKILL mid-send, then rerun: every subscriber ends with the edition exactly once.

    What SMTP cannot tell: a message whose 250 reply was on its way when the run
    died. The rerun sends those again with the same Message-ID; there can be at
    most one per pooled connection, and a mailbox keeps one message per Message-ID.
    """
    connections, lock_seconds = 4, 10  # long enough for the refused run on a loaded host
    addresses = [f"subscriber{i:04d}@example.com" for i in range(2000)]
    with serving() as sink:
        env = digest_env(
            tmp_path,
            **sink.env(),
            DIGEST_SEND_CONNECTIONS=str(connections),
            DIGEST_SEND_LOCK_TIMEOUT=str(lock_seconds),
        )
        add_subscribers(db, addresses)
        run = spawn(["run", "--now", SAMPLE_NOW], env, tmp_path, output=False)
        deadline = time.monotonic() + 60
        while len(sink.envelopes) < 700 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(run.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        run.wait()
        at_kill = len(sink.envelopes)
        assert 700 <= at_kill < 2000, f"the kill must land mid-send (at {at_kill})"

        refused = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)
        assert refused.returncode == 5 and "already being sent" in refused.stderr
        # The dead run's lock lapses DIGEST_SEND_LOCK_TIMEOUT after its last renewal.
        time.sleep(max(0.0, killed_at + lock_seconds + 0.2 - time.monotonic()))
        again = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)
        assert again.returncode == 0, again.stderr

    copies = Counter()
    ids: dict[str, set[str]] = {}
    for rcpts, raw in sink.envelopes:
        (rcpt,) = rcpts
        copies[rcpt] += 1
        ids.setdefault(rcpt, set()).add(parse(raw)["Message-ID"])
    assert set(copies) == set(addresses)
    assert all(len(message_ids) == 1 for message_ids in ids.values())
    twice = [a for a, n in copies.items() if n > 1]
    assert max(copies.values()) <= 2 and len(twice) <= connections, twice
    states = delivery_states(tmp_path / "digest.db", "digest/2026-03-19")
    assert Counter(state for state, _, _ in states.values()) == {"sent": 2000}
    runs = Database(env["DIGEST_DATABASE_URL"]).ledger.runs_of("digest/2026-03-19")
    assert [r.status for r in runs] == ["running", "done"]
    assert runs[-1].report["skipped"] + runs[-1].report["sent"] == 2000


def test_previews_show_the_real_message_without_a_secret_key(tmp_path: Path) -> None:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'd.db'}", secret_key="", from_address="a@b.example"
    )
    rendered = RenderedDigest(subject="S", text="Hello\n", html="<p>Hello</p>\n")
    message = parse(build_message(rendered, Subscriber(email="ann@example.com"), settings))
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/unsubscribe?token=")
    assert message.get_body(("plain",)).get_content().strip() == "Hello"


def test_templates_showing_or_transforming_the_readers_name_get_each_name_right(
    tmp_path: Path,
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.txt").write_text(
        "Dear {{ subscriber.name or 'reader' }} <{{ subscriber.email }}>,\n"
        "{% for theme in themes %}{{ theme.label }}\n{% endfor %}"
    )
    shouting = tmp_path / "shouting"
    shouting.mkdir()
    (shouting / "digest.txt").write_text("HELLO {{ subscriber.name | upper }}!\n")
    people = {"ann@example.com": "Ann Lee", "bob@example.com": "Bob Ó", "cy@example.com": ""}
    for directory, expected in (
        (templates, "Dear {name} <{email}>,"),
        (shouting, "HELLO {upper}!"),
    ):
        with serving() as sink:
            settings = settings_for(tmp_path / directory.name, sink, templates_dir=directory)
            store = Database(settings.database_url)
            for email_, name in people.items():
                store.subscribers.add(Subscriber(email=email_, name=name, format=MailFormat.text))
            send_edition(make_edition(), settings, store)
        for message in sink.messages:
            address = message["To"].addresses[0].addr_spec
            name = people[address]
            first_line = message.get_content().splitlines()[0]
            assert first_line == expected.format(
                name=name or "reader", email=address, upper=name.upper()
            )


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, trusted through SSL_CERT_FILE."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS tests need the `openssl` command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


class _Logins:
    """An aiosmtpd authenticator that accepts one user and remembers who logged in."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        user, password = auth_data.login.decode(), auth_data.password.decode()
        self.seen.append((user, server.transport.get_extra_info("ssl_object") is not None))
        return AuthResult(success=(user, password) == ("mailer", "s3cret-pass"), handled=False)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_starttls_and_implicit_tls_with_login(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    security: str,
    db: Database,
) -> None:
    import ssl

    cert, key = _certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts our certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins = _Logins()
    options: dict = {"authenticator": logins}
    if security == "starttls":
        options.update(tls_context=server_tls, require_starttls=True, auth_require_tls=True)
    else:  # aiosmtpd only counts STARTTLS as TLS for auth_require_tls
        options.update(ssl_context=server_tls, auth_require_tls=False)
    with serving(server_options=options) as sink:
        settings = settings_for(
            tmp_path,
            sink,
            smtp_security=security,
            smtp_timeout=5,
            smtp_username="mailer",
            smtp_password="s3cret-pass",
            send_connections=2,
            send_messages_per_connection=3,
        )
        add_subscribers(db, [f"r{i}@example.com" for i in range(8)])
        report = send_edition(make_edition(), settings, db)

        assert report.sent == 8 and sink.per_recipient() == {
            f"r{i}@example.com": 1 for i in range(8)
        }
        assert logins.seen and all(seen == ("mailer", True) for seen in logins.seen)
        assert len(logins.seen) == sink.connections  # every reopened connection logged in

        wrong = settings.model_copy(update={"smtp_password": SecretStr("hunter2-wrong")})
        with pytest.raises(DigestError, match="login as 'mailer' refused") as refused:
            send_edition(make_edition("2026-03-20"), wrong, db)
        assert "hunter2" not in str(refused.value)


def test_a_login_the_server_does_not_offer_is_named_with_the_setting_to_change(
    tmp_path: Path, db: Database
) -> None:
    """The server was reached: the message must not send the operator to the host and port."""
    with serving() as sink:  # plain SMTP, no AUTH offered
        settings = settings_for(tmp_path, sink, smtp_username="mailer", smtp_password="s3cret-pass")
        add_subscribers(db, ["ann@example.com"])
        with pytest.raises(DigestError) as refused:
            send_edition(make_edition(), settings, db)

    message = str(refused.value)
    assert f"the SMTP server 127.0.0.1:{sink.port} offers no login (AUTH)" in message
    assert "DIGEST_SMTP_SECURITY=starttls" in message and "DIGEST_SMTP_USERNAME empty" in message
    assert "cannot reach" not in message and "s3cret" not in message
    assert sink.envelopes == []


def test_an_unsolicited_421_after_a_250_is_not_taken_for_the_next_reply(
    tmp_path: Path, db: Database
) -> None:
    addresses = [f"r{i:02d}@example.com" for i in range(30)]
    with serving(goodbye_after=4) as sink:
        settings = settings_for(tmp_path, sink, send_connections=2)
        add_subscribers(db, addresses)
        report = send_edition(make_edition(), settings, db)

    assert sink.faults_injected["421-unsolicited"] >= 5
    assert sink.per_recipient() == {a: 1 for a in addresses}
    assert (report.sent, report.failed) == (30, 0)


def test_an_internationalised_address_is_sent_with_smtputf8(tmp_path: Path, db: Database) -> None:
    with serving() as sink:
        settings = settings_for(tmp_path, sink)
        josé = db.subscribers.add(Subscriber(email="josé@exämple.com", name="José"))
        report = send_edition(make_edition(), settings, db)

    assert report.sent == 1
    ((rcpts, raw),) = sink.envelopes
    assert rcpts == [josé.email]
    # SMTPUTF8 headers are UTF-8 (RFC 6532); read them as such.
    message = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    assert message["To"].addresses[0].addr_spec == josé.email
    assert message["To"].addresses[0].display_name == "José"


def test_a_refused_sender_stops_the_run_without_failing_anyone(
    tmp_path: Path, db: Database
) -> None:
    addresses = [f"r{i}@example.com" for i in range(10)]
    with serving(refuse_sender=True) as sink:
        settings = settings_for(tmp_path, sink)
        add_subscribers(db, addresses)
        with pytest.raises(DigestError, match=r"refuses the sender 'news@digest\.example\.org'"):
            send_edition(make_edition(), settings, db)
        assert sink.envelopes == []
        assert db.ledger.states("digest/2026-03-19").get("failed", 0) == 0
        assert db.ledger.runs_of("digest/2026-03-19")[-1].status == "error"

        sink.refuse_sender = False  # the operator fixed the relay: the next run sends all
        report = send_edition(make_edition(), settings, db)

    assert report.status == "done" and sink.per_recipient() == {a: 1 for a in addresses}
