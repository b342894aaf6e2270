"""Operations under stress: feed outages, operator mistakes, bad records, killed runs.

Real parts throughout: feeds on a loopback HTTP server, mail into aiosmtpd, a
SQLite file, `digest` run as a subprocess the way an operator runs it.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from support import FeedServer, MailSink, digest_env, free_port, invoke, serving, spawn

from digest.collect.probe import Problem, probe_feeds
from digest.config import load_settings
from digest.db import Database
from digest.job import preview_edition
from digest.models import FeedReport
from digest.outage import outage_reason

RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
    "<link>https://news.example.com/</link>{items}</channel></rss>"
)
ITEM = (
    "<item><title>{title}</title><link>https://news.example.com/{slug}/{n}</link>"
    "<pubDate>{date}</pubDate><description>Story {n}.</description></item>"
)


def write_rss(
    server: FeedServer, name: str, title: str, dates: list[str], topics: tuple[str, ...] = ()
) -> str:
    """An RSS feed whose items are '<title> story <n>' (or '<title>: <topic>'), dated."""
    items = "".join(
        ITEM.format(
            title=f"{title}: {topics[n]}" if topics else f"{title} story {n}",
            slug=name,
            n=n,
            date=d,
        )
        for n, d in enumerate(dates)
    )
    (server.root / name).write_text(RSS.format(title=title, items=items))
    return server.url(name)


# Settings: typos are caught, every message carries an example.


def test_misspelt_settings_in_env_file_and_environment_name_the_nearest(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DIGEST_SMTP_PROT=25\n")
    env = digest_env(tmp_path, DIGEST_SEND_CONECTIONS="8", DIGEST_SEDN_TIME="06:30")

    listed = invoke(["subscribers", "list"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "DIGEST_SMTP_PROT: no such setting; did you mean DIGEST_SMTP_PORT?" in listed.stderr
    assert (
        "DIGEST_SEND_CONECTIONS: no such setting; did you mean DIGEST_SEND_CONNECTIONS?"
        in listed.stderr
    )
    # Two names as near as each other are both offered: the time is DIGEST_SEND_AT.
    assert (
        "DIGEST_SEDN_TIME: no such setting; did you mean DIGEST_SEND_RATE or DIGEST_SEND_AT?"
        in listed.stderr
    )

    # The warning is written as DIGEST_LOG_FORMAT asks, like every other log line.
    text = invoke(["subscribers", "list"], {**env, "DIGEST_LOG_FORMAT": "text"}, tmp_path)
    (line,) = [line for line in text.stderr.splitlines() if "DIGEST_SEND_CONECTIONS" in line]
    assert " WARNING digest.config: DIGEST_SEND_CONECTIONS: no such setting" in line
    assert not line.startswith("{")

    checked = invoke(["check"], env, tmp_path)
    assert checked.returncode != 0
    fails = [line for line in checked.stdout.splitlines() if line.startswith("FAIL settings")]
    assert any("did you mean DIGEST_SMTP_PORT?" in line for line in fails), checked.stdout
    assert any("did you mean DIGEST_SEND_CONNECTIONS?" in line for line in fails)
    assert "every DIGEST_* value is valid" not in checked.stdout


def test_bad_values_are_answered_with_an_example_never_a_regular_expression(
    tmp_path: Path,
) -> None:
    env = digest_env(
        tmp_path,
        DIGEST_SEND_AT="6:30am",
        DIGEST_LIST_ID="my list",
        DIGEST_PUBLIC_URL="digest.example.com",
        DIGEST_FETCH_TIMEOUT="-1",
        DIGEST_SECRET_KEY="short",
    )
    result = invoke(["run", "--dry-run"], env, tmp_path)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    by_name = {re.search(r"DIGEST_\w+", line).group(0): line for line in lines}  # type: ignore[union-attr]
    assert "use HH:MM" in by_name["DIGEST_SEND_AT"] and "e.g. 06:30" in by_name["DIGEST_SEND_AT"]
    assert "e.g." in by_name["DIGEST_LIST_ID"] and "e.g." in by_name["DIGEST_PUBLIC_URL"]
    assert "e.g. DIGEST_FETCH_TIMEOUT=20" in by_name["DIGEST_FETCH_TIMEOUT"]
    secret = by_name["DIGEST_SECRET_KEY"]
    assert "at least 32" in secret and "digest secret" in secret and "short" not in secret
    for line in lines:
        assert not re.search(r"\^|\$'|\\[dsS]|\[A-Z", line), f"a regular expression: {line}"
        assert "Traceback" not in line


# Feeds are checked when added.


def test_probe_says_what_a_feed_holds_or_why_it_cannot_be_read(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    good = write_rss(
        feed_server,
        "good.xml",
        "Harbour News",
        ["Thu, 19 Mar 2026 05:00:00 GMT", "Thu, 19 Mar 2026 04:00:00 GMT"],
    )
    (feed_server.root / "page.html").write_text("<html><body>Not a feed</body></html>")
    sources = [
        good,
        str(tmp_path / "missing.xml"),
        feed_server.url("gone.xml"),
        f"http://127.0.0.1:{free_port()}/rss",
        "htp://example.com/rss",
        feed_server.url("page.html"),
    ]

    probes = probe_feeds(sources, load_settings(_env_file=None))

    found = probes[0]
    assert found.ok and found.title == "Harbour News" and found.entries == 2
    assert found.newest is not None and found.newest.isoformat() == "2026-03-19T05:00:00+00:00"
    assert found.describe() == "'Harbour News', 2 entries, newest 2026-03-19 05:00 UTC"
    kinds = [p.problem for p in probes[1:]]
    assert kinds == [
        Problem.not_found,
        Problem.not_found,
        Problem.refused,
        Problem.bad_scheme,
        Problem.not_a_feed,
    ]
    assert "404" in probes[2].describe() and "missing.xml" in probes[1].describe()


# Subscriber import: a cell's line breaks never break the error report.


def test_import_error_lines_never_echo_raw_newlines_from_a_cell(tmp_path: Path) -> None:
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(
        'email,name,timezone\n"ann@example.com\nINFO: all good",Ann,UTC\n'
        'bob@example.com,Bob,"Mars/Base\r\nFAKE LINE"\n',
        newline="",
    )
    env = digest_env(tmp_path)

    result = invoke(["subscribers", "import", str(csv_file)], env, tmp_path)

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert not any(line.startswith(("INFO: all good", "FAKE LINE")) for line in lines)
    bad = [line for line in lines if ": line " in line]
    assert len(bad) == 2, result.stderr
    assert "\\n" in bad[0] and "\\r\\n" in bad[1]


# No silent empty mornings.

NOW = "2026-03-19T07:00:00+00:00"
DAY = "digest/2026-03-19"
READERS = ["ann@example.com", "bob@example.org", "carol@example.net"]
FRESH = ["Thu, 19 Mar 2026 05:00:00 GMT", "Thu, 19 Mar 2026 04:00:00 GMT"]


def db_rows(tmp_path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / "digest.db") as conn:
        return conn.execute(query).fetchall()


def add_readers(env: dict[str, str], cwd: Path, readers: list[str] = READERS) -> None:
    for address in readers:
        added = invoke(["subscribers", "add", address], env, cwd)
        assert added.returncode == 0, added.stderr


def recipients(sink: MailSink) -> Counter[str]:
    return Counter(rcpt for rcpts, _ in sink.envelopes for rcpt in rcpts)


def test_feeds_down_at_the_first_run_store_nothing_and_the_next_run_sends_everyone(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    urls = [feed_server.url("one.xml"), feed_server.url("two.xml")]
    env = digest_env(tmp_path, DIGEST_FEEDS=",".join(urls), **smtp_sink.env())
    add_readers(env, tmp_path)

    # A dry run says what the run would: the feeds are down, nothing would go out.
    dry = invoke(["run", "--dry-run", "--now", NOW, "--out", str(tmp_path / "dry")], env, tmp_path)
    assert dry.returncode == 6, dry.stderr
    assert "every feed failed (2 of 2)" in dry.stderr and "Traceback" not in dry.stderr
    assert not list((tmp_path / "dry").iterdir())
    look = invoke(["preview", "--now", NOW, "--out", str(tmp_path / "look")], env, tmp_path)
    assert look.returncode == 0, look.stderr  # a preview still shows it, with the warning
    assert "a real run would send nothing now" in look.stderr
    assert "every feed failed (2 of 2)" in look.stderr

    down = invoke(["run", "--now", NOW], env, tmp_path)

    assert down.returncode == 6, down.stderr
    assert "every feed failed (2 of 2)" in down.stderr and "Traceback" not in down.stderr
    assert db_rows(tmp_path, "SELECT id FROM editions") == []
    assert db_rows(tmp_path, "SELECT state FROM deliveries") == []
    assert smtp_sink.envelopes == []
    runs = invoke(["runs"], env, tmp_path)
    assert "failed" in runs.stdout and "every feed failed" in runs.stdout

    write_rss(feed_server, "one.xml", "Harbour News", FRESH, ("bridge reopens", "ferry strike"))
    write_rss(feed_server, "two.xml", "River Post", FRESH, ("festival opens", "flood warning"))
    back = invoke(["run", "--now", NOW], env, tmp_path)

    assert back.returncode == 0, back.stderr
    assert recipients(smtp_sink) == dict.fromkeys(READERS, 1)
    for message in smtp_sink.messages:
        text = message.get_body(("plain",)).get_content()
        assert "bridge reopens" in text and "flood warning" in text


def test_a_quiet_day_stays_quiet(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    old = ["Mon, 16 Mar 2026 05:00:00 GMT"]
    url = write_rss(feed_server, "quiet.xml", "Quiet Gazette", old)
    env = digest_env(
        tmp_path, DIGEST_FEEDS=url, DIGEST_ALERT_TO="ops@example.com", **smtp_sink.env()
    )
    add_readers(env, tmp_path, READERS[:1])

    quiet = invoke(["run", "--now", NOW], env, tmp_path)

    assert quiet.returncode == 0, quiet.stderr
    assert "empty today" in quiet.stderr
    assert smtp_sink.envelopes == []  # DIGEST_QUIET_DAY=skip, and no alert


def test_few_articles_with_failing_feeds_is_an_outage_but_not_without_failures() -> None:
    ok = FeedReport(url="https://a.example/rss", ok=True, articles=3)
    down = FeedReport(url="https://b.example/rss", ok=False, error="HTTP 503")
    recent = [120, 130, 110]

    assert outage_reason([ok, down], 3, recent, 0.25) is not None
    assert outage_reason([ok, down], 60, recent, 0.25) is None
    assert outage_reason([ok], 0, recent, 0.25) is None  # a quiet day
    assert outage_reason([ok, down], 3, [], 0.25) is None  # no history to compare with
    assert outage_reason([down], 0, [], 0.25) == "every feed failed (1 of 1)"


def test_schedule_waits_out_a_feed_outage_and_sends_that_morning(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    url = feed_server.url("late.xml")
    # One real second is two simulated minutes: the send time comes after half a second.
    env = digest_env(
        tmp_path,
        DIGEST_FEEDS=url,
        DIGEST_SEND_AT="06:30",
        DIGEST_SEND_DEADLINE="08:00",
        DIGEST_TIMEZONE="UTC",
        DIGEST_CLOCK_START="2026-03-19T06:29:00+00:00",
        DIGEST_CLOCK_SPEED="120",
        **smtp_sink.env(),
    )
    add_readers(env, tmp_path)
    process = spawn(["schedule"], env, tmp_path)
    try:
        time.sleep(10.5)  # the feed comes back 20 simulated minutes after the send time
        write_rss(feed_server, "late.xml", "Late Courier", FRESH)
        deadline = time.monotonic() + 60
        while len(smtp_sink.envelopes) < len(READERS) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)

    assert process.returncode == 0, log
    assert recipients(smtp_sink) == dict.fromkeys(READERS, 1), log
    assert all("19 Mar" in m["Subject"] for m in smtp_sink.messages)
    assert "trying the morning again" in log
    assert all(
        "Late Courier story 0" in m.get_body(("plain",)).get_content() for m in smtp_sink.messages
    )


# The operator is told.


def alerts_to(sink: MailSink, address: str) -> list:
    return [m for m in sink.messages if m["To"].addresses[0].addr_spec == address]


def test_alerts_one_for_a_failed_run_one_for_a_dead_feed_none_for_a_quiet_day(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    two_days = [*FRESH, "Fri, 20 Mar 2026 05:00:00 GMT", "Fri, 20 Mar 2026 04:00:00 GMT"]
    good = write_rss(feed_server, "good.xml", "Harbour News", two_days)
    flaky = feed_server.url("flaky.xml")
    env = digest_env(
        tmp_path,
        DIGEST_FEEDS=f"{good},{flaky}",
        DIGEST_FEED_DEAD_AFTER="2",
        DIGEST_ALERT_TO="ops@example.com",
        **smtp_sink.env(),
    )
    add_readers(env, tmp_path, READERS[:1])

    # Two mornings with one feed down: the second makes it dead.
    for now in ("2026-03-19T07:00:00+00:00", "2026-03-20T07:00:00+00:00"):
        sent = invoke(["run", "--now", now], env, tmp_path)
        assert sent.returncode == 0, sent.stderr
    dead = alerts_to(smtp_sink, "ops@example.com")
    assert len(dead) == 1, [m["Subject"] for m in dead]
    assert "dead" in dead[0]["Subject"] and flaky in dead[0].get_content()
    assert "digest feeds list" in dead[0].get_content()
    assert dead[0]["Auto-Submitted"] == "auto-generated"

    # A quiet day: every feed answers, nothing new.
    write_rss(feed_server, "good.xml", "Harbour News", ["Mon, 16 Mar 2026 05:00:00 GMT"])
    write_rss(feed_server, "flaky.xml", "Flaky Wire", ["Mon, 16 Mar 2026 05:00:00 GMT"])
    quiet = invoke(["run", "--now", "2026-03-21T07:00:00+00:00"], env, tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert len(alerts_to(smtp_sink, "ops@example.com")) == 1

    # Every feed down, twice the same day: one alert for the failed runs (the feeds are
    # far from dead now: each has failed once or twice since the quiet day).
    env["DIGEST_FEED_DEAD_AFTER"] = "5"
    (feed_server.root / "good.xml").unlink()
    (feed_server.root / "flaky.xml").unlink()
    for _ in range(2):
        failed = invoke(["run", "--now", "2026-03-22T07:00:00+00:00"], env, tmp_path)
        assert failed.returncode == 6, failed.stderr
    alerts = alerts_to(smtp_sink, "ops@example.com")
    assert len(alerts) == 2, [m["Subject"] for m in alerts]
    assert "failed" in alerts[1]["Subject"] and "every feed failed" in alerts[1]["Subject"]
    assert "digest runs" in alerts[1].get_content()
    assert "ann@example.com" not in alerts[1].get_content()


# Feeds are checked when added; health counts real runs only.


def test_feeds_add_refuses_what_cannot_be_read_unless_told_not_to_check(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    env = digest_env(tmp_path)
    good = write_rss(feed_server, "good.xml", "Harbour News", FRESH)
    bad = {
        str(tmp_path / "missing.xml"): "not found",
        feed_server.url("gone.xml"): "not found",
        f"http://127.0.0.1:{free_port()}/rss": "refused",
        "htp://example.com/rss": "bad scheme",
    }

    for url, reason in bad.items():
        refused = invoke(["feeds", "add", url], env, tmp_path)
        assert refused.returncode != 0 and reason in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
        # --no-check is offered only where a later fetch could succeed: never for "htp://".
        assert ("--no-check" in refused.stderr) is (reason != "bad scheme"), refused.stderr
    page = feed_server.root / "page.html"
    page.write_text("<html><body>Harbour News</body></html>")
    refused = invoke(["feeds", "add", feed_server.url("page.html")], env, tmp_path)
    assert "error: not adding" in refused.stderr and "not a feed: the document" in refused.stderr
    assert "not a feed: not a feed" not in refused.stderr
    added = invoke(["feeds", "add", good], env, tmp_path)
    assert added.returncode == 0, added.stderr
    assert "Harbour News" in added.stdout and "2 entries" in added.stdout
    forced = invoke(["feeds", "add", "--no-check", feed_server.url("gone.xml")], env, tmp_path)
    assert forced.returncode == 0, forced.stderr
    never = invoke(["feeds", "add", "--no-check", "ftp://example.com/rss"], env, tmp_path)
    assert never.returncode == 1 and "bad scheme: ftp:// is not a feed address" in never.stderr

    listed = invoke(["feeds", "list"], env, tmp_path).stdout
    assert good in listed and feed_server.url("gone.xml") in listed
    assert str(tmp_path / "missing.xml") not in listed and "ftp://" not in listed
    # Health is what runs found: a feed no run has fetched is not called ok.
    assert f"{feed_server.url('gone.xml')}\tnot fetched by a run yet" in listed


def test_opml_import_checks_each_feed(tmp_path: Path, feed_server: FeedServer) -> None:
    good = write_rss(feed_server, "good.xml", "Harbour News", FRESH)
    gone = feed_server.url("gone.xml")
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>t</title></head><body>'
        f'<outline type="rss" text="Good" xmlUrl="{good}"/>'
        f'<outline type="rss" text="Gone" xmlUrl="{gone}"/></body></opml>'
    )
    env = digest_env(tmp_path)

    result = invoke(["feeds", "import", str(opml)], env, tmp_path)

    assert result.returncode != 0
    assert gone in result.stderr and "not found" in result.stderr
    listed = invoke(["feeds", "list"], env, tmp_path).stdout
    assert good in listed and gone not in listed
    forced = invoke(["feeds", "import", "--no-check", str(opml)], env, tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert gone in invoke(["feeds", "list"], env, tmp_path).stdout


def test_twenty_failing_previews_leave_a_feeds_health_unchanged(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    down = feed_server.url("down.xml")
    env = digest_env(tmp_path, DIGEST_FEED_DEAD_AFTER="2")
    assert invoke(["feeds", "add", "--no-check", down], env, tmp_path).returncode == 0
    settings = load_settings(
        _env_file=None, database_url=env["DIGEST_DATABASE_URL"], feed_dead_after=2
    )

    for _ in range(20):
        edition = preview_edition(
            settings, Database(settings.database_url), now=datetime.fromisoformat(NOW)
        )
        assert not edition.feeds[0].ok and not edition.feeds[0].dead
    for args in (["run", "--dry-run", "--now", NOW], ["feeds", "check"], ["check"]):
        invoke(args, env, tmp_path)

    health = db_rows(tmp_path, "SELECT consecutive_failures FROM feeds")
    assert health == [(0,)]
    listed = invoke(["feeds", "list"], env, tmp_path).stdout
    assert "failing" not in listed and "dead" not in listed


# One bad record never stops a run (issue 16, item 7).


def test_a_subscriber_record_that_cannot_be_used_is_skipped_and_counted(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    url = write_rss(feed_server, "news.xml", "Harbour News", FRESH)
    env = digest_env(tmp_path, DIGEST_FEEDS=url, **smtp_sink.env())
    add_readers(env, tmp_path)
    with sqlite3.connect(tmp_path / "digest.db") as conn:
        conn.execute("UPDATE subscribers SET timezone = 'Mars/Base' WHERE email = ?", (READERS[1],))
        conn.execute(
            "UPDATE subscribers SET topics_include = '{not json' WHERE email = ?", (READERS[2],)
        )

    result = invoke(["run", "--now", NOW], env, tmp_path)

    assert "Traceback" not in result.stderr and "ZoneInfoNotFoundError" not in result.stderr
    assert recipients(smtp_sink) == {READERS[0]: 1}
    assert "Mars/Base" in result.stderr and "2 unusable" in result.stdout
    runs = invoke(["runs"], env, tmp_path).stdout
    assert "2 unusable" in runs


# Operator settings that crash (issue 16, item 12).


def test_a_database_driver_that_is_not_installed_is_one_readable_line(tmp_path: Path) -> None:
    env = digest_env(tmp_path, DIGEST_DATABASE_URL="mysql+pymysql://digest@127.0.0.1/digest")

    result = invoke(["subscribers", "list"], env, tmp_path)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    # Not "pip install pymysql": no driver would make MySQL work.
    assert "DIGEST_DATABASE_URL" in line and "pip install" not in line
    assert "SQLite or PostgreSQL, not mysql: e.g. sqlite:///digest.db" in line

    env["DIGEST_DATABASE_URL"] = "postgresql+psycopg2://digest@127.0.0.1/digest"
    postgres = invoke(["subscribers", "list"], env, tmp_path)
    if "psycopg2" in postgres.stderr:  # psycopg2 itself may be installed here
        (line,) = postgres.stderr.strip().splitlines()
        assert "digest[postgres]" in line and "postgresql+psycopg://" in line


def test_a_sqlite_url_never_creates_directories_outside_the_working_tree_unannounced(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "elsewhere" / "deep"
    env = digest_env(tmp_path, DIGEST_DATABASE_URL=f"sqlite:///{outside / 'digest.db'}")

    refused = invoke(["subscribers", "list"], env, work)

    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert str(outside) in refused.stderr and "mkdir" in refused.stderr
    assert not (tmp_path / "elsewhere").exists()

    env["DIGEST_DATABASE_URL"] = "sqlite:///data/digest.db"
    inside = invoke(["subscribers", "list"], env, work)
    assert inside.returncode == 0, inside.stderr
    assert (work / "data" / "digest.db").is_file()


def test_a_run_killed_with_sigkill_shows_as_interrupted_once_its_lock_lapses(
    tmp_path: Path, feed_server: FeedServer, slow_smtp_sink: MailSink
) -> None:
    url = write_rss(feed_server, "news.xml", "Harbour News", FRESH)
    env = digest_env(
        tmp_path, DIGEST_FEEDS=url, DIGEST_SEND_LOCK_TIMEOUT="4", **slow_smtp_sink.env()
    )
    csv_file = tmp_path / "many.csv"
    csv_file.write_text("email\n" + "".join(f"r{n:03d}@example.com\n" for n in range(200)))
    assert invoke(["subscribers", "import", str(csv_file)], env, tmp_path).returncode == 0
    run = spawn(["run", "--now", NOW], env, tmp_path, output=False)
    deadline = time.monotonic() + 60
    while len(slow_smtp_sink.envelopes) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()

    while_held = invoke(["runs"], env, tmp_path).stdout
    assert "running" in while_held and "interrupted" not in while_held
    time.sleep(4.5)
    lapsed = invoke(["runs"], env, tmp_path).stdout
    assert "interrupted" in lapsed and "running" not in lapsed


def test_a_partial_run_and_many_bounces_alert_the_operator_once(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    url = write_rss(feed_server, "news.xml", "Harbour News", FRESH)
    gone = {"gone1@example.com", "gone2@example.com"}  # refused for good: bounced
    busy = "busy@example.com"  # refused for now: without the edition, a partial run
    with serving(refuse=gone, defer={busy}) as sink:
        env = digest_env(
            tmp_path,
            DIGEST_FEEDS=url,
            DIGEST_ALERT_TO="ops@example.com",
            DIGEST_ALERT_BOUNCES="2",
            DIGEST_BOUNCE_THRESHOLD="1",
            DIGEST_SEND_ATTEMPTS="1",
            **sink.env(),
        )
        add_readers(env, tmp_path, [READERS[0], busy, *sorted(gone)])

        partial = invoke(["run", "--now", NOW], env, tmp_path)

        assert partial.returncode == 3, partial.stderr
        subjects = sorted(m["Subject"] for m in alerts_to(sink, "ops@example.com"))
        assert len(subjects) == 2, subjects
        assert "2 addresses bounced" in subjects[0] and "was partial" in subjects[1]
        for alert in alerts_to(sink, "ops@example.com"):
            assert "gone" not in alert.get_content() and busy not in alert.get_content()
        runs = invoke(["runs"], env, tmp_path).stdout
        assert "was partial" in runs and "emailed to DIGEST_ALERT_TO" in runs


def test_a_run_without_its_secret_key_alerts_the_operator_and_fetches_nothing(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    url = write_rss(feed_server, "one.xml", "Harbour News", FRESH)
    env = digest_env(
        tmp_path, DIGEST_FEEDS=url, DIGEST_ALERT_TO="ops@example.com", **smtp_sink.env()
    )
    env["DIGEST_SECRET_KEY"] = ""
    add_readers(env, tmp_path, READERS[:1])

    stopped = invoke(["run", "--now", NOW], env, tmp_path)

    assert stopped.returncode == 2 and "DIGEST_SECRET_KEY is not set" in stopped.stderr
    (alert,) = alerts_to(smtp_sink, "ops@example.com")  # the scheduler's only signal
    assert "stopped" in alert["Subject"] and "DIGEST_SECRET_KEY" in alert.get_content()
    assert db_rows(tmp_path, "SELECT id FROM editions") == []


def test_an_alert_that_cannot_log_in_still_leaves_the_outage_reported(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    """The alert's own SMTP failure (no login offered) must not hide why the run failed."""
    env = digest_env(
        tmp_path,
        DIGEST_FEEDS=feed_server.url("down.xml"),
        DIGEST_ALERT_TO="ops@example.com",
        DIGEST_SMTP_USERNAME="mailer",
        DIGEST_SMTP_PASSWORD="s3cret-pass",
        **smtp_sink.env(),
    )
    add_readers(env, tmp_path, READERS[:1])

    down = invoke(["run", "--now", NOW], env, tmp_path)

    assert down.returncode == 6, down.stderr
    assert "could not email the alert to DIGEST_ALERT_TO: the SMTP server" in down.stderr
    assert "offers no login" in down.stderr
    runs = invoke(["runs"], env, tmp_path).stdout
    assert "every feed failed" in runs and "emailing it failed" in runs
    assert "s3cret" not in down.stderr and smtp_sink.envelopes == []
