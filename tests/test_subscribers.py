"""Subscribers: CSV import and export, the CLI, and personalised delivery."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import (
    SAMPLE_NOW,
    FeedServer,
    MailSink,
    digest_env,
    invoke,
    serve_samples,
)

from digest.db import Database
from digest.db.subscribers import FIELDS
from digest.errors import InvalidField
from digest.logs import subscriber_ref
from digest.models import Article, DigestError, Edition, Subscriber, SubscriberStatus, Theme
from digest.personalise import personalise
from digest.phrases import topic_matcher
from digest.subscribers import EXPORT_COLUMNS, import_csv, parse_topics, read_csv, write_csv

HEADER = ["email", *FIELDS]


def _big_csv(path: Path, rows: int = 10_000, bad_every: int = 200) -> tuple[dict, dict]:
    """Write `rows` data rows, one in `bad_every` bad in one of several ways.

    Returns the good rows by address and the bad rows by line number, with
    a word the reason must contain.
    """
    zones = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney"]
    good: dict[str, dict] = {}
    bad: dict[int, str] = {}
    kinds = ["syntax", "duplicate", "timezone", "format", "hour", "status"]
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(HEADER)
        for i in range(rows):
            line = i + 2
            row = {
                "email": f"Reader.{i:05d}@Example.com",
                "name": f"Réader {i}, Jr." if i % 3 == 0 else "",
                "status": ["active", "unsubscribed", "bounced"][i % 7 % 3],
                "timezone": zones[i % len(zones)],
                "delivery_hour": "" if i % 4 == 0 else str(i % 24),
                "format": "text" if i % 5 == 0 else "html",
                "topics_include": "Storm Edda; rail" if i % 6 == 0 else "",
                "topics_exclude": "football" if i % 11 == 0 else "",
            }
            if i % bad_every == bad_every - 1:
                kind = kinds[(i // bad_every) % len(kinds)]
                if kind == "syntax":
                    row["email"] = ["not an address", "ann@@example.com", "bob@", "@x.org"][i % 4]
                    bad[line] = "invalid email address"
                elif kind == "duplicate":
                    row["email"] = f"READER.{i - 1:05d}@EXAMPLE.COM"
                    bad[line] = f"duplicate of line {line - 1}"
                elif kind == "timezone":
                    row["timezone"] = "Mars/Olympus"
                    bad[line] = "unknown time zone"
                elif kind == "format":
                    row["format"] = "pdf"
                    bad[line] = "unknown format"
                elif kind == "hour":
                    row["delivery_hour"] = "25"
                    bad[line] = "delivery hour"
                else:
                    row["status"] = "paused"
                    bad[line] = "unknown status"
            else:
                good[row["email"].lower()] = row
            writer.writerow([row[c] for c in HEADER])
    return good, bad


def _exported(env: dict, cwd: Path) -> dict[str, dict]:
    result = invoke(["subscribers", "export"], env, cwd)
    assert result.returncode == 0, result.stderr
    return {row["email"]: row for row in csv.DictReader(io.StringIO(result.stdout))}


def test_import_of_10000_rows_reports_every_bad_row_and_stores_all_or_nothing(
    tmp_path: Path,
) -> None:
    source = tmp_path / "subscribers.csv"
    good, bad = _big_csv(source)
    assert len(bad) == 50 and len(good) == 9_950
    env = digest_env(tmp_path)

    refused = invoke(["subscribers", "import", str(source)], env, tmp_path)

    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    reported = [ln for ln in refused.stderr.splitlines() if ln.startswith(f"{source}: line ")]
    assert len(reported) == 50, refused.stderr[-2000:]
    for line, reason in bad.items():
        matching = [r for r in reported if r.startswith(f"{source}: line {line} ")]
        assert len(matching) == 1, f"line {line} not reported once: {matching}"
        assert reason in matching[0], matching[0]
    assert "nothing was imported" in refused.stderr and "--skip-invalid" in refused.stderr
    assert _exported(env, tmp_path) == {}

    stored = invoke(["subscribers", "import", "--skip-invalid", str(source)], env, tmp_path)

    assert stored.returncode == 0, stored.stderr
    assert "9950 added" in stored.stdout and "50 bad rows skipped" in stored.stdout
    rows = _exported(env, tmp_path)
    assert set(rows) == set(good)
    for address, expected in good.items():
        row = rows[address]
        for column in HEADER[1:]:
            assert row[column] == expected[column].replace("; ", ";"), (address, column)


def test_export_then_import_is_lossless_and_reimport_never_duplicates(tmp_path: Path) -> None:
    source = tmp_path / "subscribers.csv"
    _big_csv(source, rows=600, bad_every=10_000)
    first = digest_env(tmp_path)
    assert invoke(["subscribers", "import", str(source)], first, tmp_path).returncode == 0
    exported = tmp_path / "export.csv"
    done = invoke(["subscribers", "export", str(exported)], first, tmp_path)
    assert done.returncode == 0 and "exported 600 subscribers" in done.stdout

    (tmp_path / "second").mkdir()
    second = digest_env(tmp_path / "second")
    loaded = invoke(["subscribers", "import", str(exported)], second, tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert "600 added" in loaded.stdout

    assert _exported(second, tmp_path) == _exported(first, tmp_path)
    assert invoke(["subscribers", "export"], second, tmp_path).stdout == exported.read_text()

    again = invoke(["subscribers", "import", str(exported)], first, tmp_path)
    assert "0 added, 0 updated, 600 unchanged" in again.stdout, again.stdout
    assert _exported(first, tmp_path) == _exported(second, tmp_path)


def test_reimport_updates_only_the_named_columns_and_keeps_unsubscribed(db: Database) -> None:
    store = db.subscribers
    initial = "email,name,timezone,topics_include\nann@example.com,Ann,Europe/Paris,rail;storm\n"
    import_csv(store, io.StringIO(initial + "bob@example.com,Bob,UTC,\n"))
    store.set_status("bob@example.com", SubscriberStatus.unsubscribed)
    before = store.get("ann@example.com")

    plan, counts = import_csv(
        store,
        io.StringIO(
            "email,name,status\nANN@example.com,Ann B,active\nbob@example.com,Bob,active\n"
        ),
    )

    assert not plan.bad
    assert counts is not None and (counts.added, counts.updated, counts.unchanged) == (0, 1, 1)
    assert counts.kept_unsubscribed == 1
    ann = store.get("ann@example.com")
    assert ann is not None and before is not None
    assert ann.name == "Ann B" and ann.timezone == "Europe/Paris"
    assert ann.topics_include == ["rail", "storm"]
    assert ann.created_at == before.created_at and ann.updated_at > before.updated_at
    assert store.get("bob@example.com").status is SubscriberStatus.unsubscribed

    import_csv(store, io.StringIO("email,status\nbob@example.com,active\n"), resubscribe=True)
    assert store.get("bob@example.com").status is SubscriberStatus.active


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("name,timezone\nAnn,UTC\n", "no 'email' column"),
        ("email,colour\nann@example.com,red\n", "unknown column 'colour'; the columns"),
        ("email;name\nann@example.com;Ann\n", "separated by ';': save it with commas"),
        ("email,name,name\nann@example.com,a,b\n", "named twice"),
        ('email,name\nann@example.com,"unclosed\nbob@example.com,Bob\n', "line 2: the CSV"),
    ],
)
def test_a_file_that_is_not_a_subscriber_csv_is_refused_clearly(content: str, message: str) -> None:
    with pytest.raises(DigestError, match=message):
        read_csv(io.StringIO(content, newline=""))


def test_empty_lists_say_so_and_what_to_do(tmp_path: Path) -> None:
    env = digest_env(tmp_path)
    for command, note in (
        (["subscribers", "list"], "no subscribers; see `digest subscribers add`"),
        (["subscribers", "list", "--status", "bounced"], "no bounced subscribers"),
        (["feeds", "list"], "no feeds listed: runs read DIGEST_FEEDS, or else the bundled"),
        (["runs"], "no send runs yet"),
    ):
        result = invoke(command, env, tmp_path)
        assert result.returncode == 0 and note in result.stderr, (command, result.stderr)


def test_a_file_that_is_not_utf8_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,name\nann@example.com,Andr\u00e9\n".encode("latin-1"))
    env = digest_env(tmp_path)

    result = invoke(["subscribers", "import", str(path)], env, tmp_path)

    assert result.returncode == 1
    assert "UTF-8" in result.stderr and "Traceback" not in result.stderr
    assert _exported(env, tmp_path) == {}


def test_excel_style_csv_with_bom_and_crlf_imports(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(
        b"\xef\xbb\xbfEmail,Name\r\nann@example.com,Ann\r\n\r\nbob@example.com,Bob\r\n"
    )
    env = digest_env(tmp_path)

    result = invoke(["subscribers", "import", str(path)], env, tmp_path)

    assert result.returncode == 0, result.stderr
    assert set(_exported(env, tmp_path)) == {"ann@example.com", "bob@example.com"}


def test_line_numbers_count_physical_lines_of_multiline_cells() -> None:
    text = 'email,name\nann@example.com,"two\nlines"\nnot-an-address,x\n'

    plan = read_csv(io.StringIO(text))

    assert [(b.line, b.email) for b in plan.bad] == [(4, "not-an-address")]
    assert plan.rows[0]["name"] == "two lines"  # no line breaks reach the To: header


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("http://evil.example")',
        "+cmd|' /C calc'!A0",
        "@SUM(1+1)",
        "-2+3",
        "\tindented",
        "\rreturn",
        "'=already quoted",
        "plain",
        "a=b",
    ],
)
def test_export_neutralises_formulas_and_import_gives_them_back(db: Database, value: str) -> None:
    db.subscribers.add(Subscriber(email="ann@example.com", topics_include=[value]))
    out = io.StringIO()
    write_csv(db.subscribers.iter(), out)

    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    # OWASP: no cell a spreadsheet would run starts with = + - @ tab or CR.
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())
    plan = read_csv(io.StringIO(out.getvalue()))
    assert not plan.bad and plan.rows[0]["topics_include"] == [" ".join(value.split())]


def test_cli_add_show_list_and_refusals(tmp_path: Path) -> None:
    env = digest_env(tmp_path)
    added = invoke(
        [
            "subscribers",
            "add",
            "Ann@Example.com",
            "--name",
            "Ann",
            "--timezone",
            "Asia/Tokyo",
            "--hour",
            "7",
            "--format",
            "text",
            "--topics",
            "rail; storm",
        ],
        env,
        tmp_path,
    )
    assert added.returncode == 0, added.stderr

    shown = invoke(["subscribers", "show", "ANN@example.com"], env, tmp_path)

    assert shown.returncode == 0
    assert "email: ann@example.com" in shown.stdout
    assert "timezone: Asia/Tokyo" in shown.stdout and "delivery_hour: 07:00" in shown.stdout
    assert "format: text" in shown.stdout and "topics_include: rail; storm" in shown.stdout

    for args, message in [
        (["--timezone", "Mars/Olympus"], "unknown time zone"),
        (["--hour", "24"], "delivery hour"),
        (["--format", "pdf"], "unknown format"),
    ]:
        refused = invoke(["subscribers", "add", "bob@example.com", *args], env, tmp_path)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    missing = invoke(["subscribers", "show", "nobody@example.com"], env, tmp_path)
    assert missing.returncode == 1 and "no subscriber nobody@example.com" in missing.stderr
    listed = invoke(["subscribers", "list", "--status", "active"], env, tmp_path)
    assert listed.stdout.split() == ["ann@example.com", "active", "Ann"]


def test_export_writes_every_field(tmp_path: Path) -> None:
    stamp = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    sub = Subscriber(
        email="ann@example.com",
        name='Ann "A", Jr.',
        status=SubscriberStatus.bounced,
        timezone="Europe/Paris",
        delivery_hour=6,
        format="text",
        topics_include=["rail", "storm edda"],
        topics_exclude=["football"],
        created_at=stamp,
        updated_at=stamp,
    )
    out = io.StringIO()

    assert write_csv([sub], out) == 1

    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert tuple(row) == EXPORT_COLUMNS
    assert row == {
        "email": "ann@example.com",
        "name": 'Ann "A", Jr.',
        "status": "bounced",
        "timezone": "Europe/Paris",
        "delivery_hour": "6",
        "format": "text",
        "topics_include": "rail;storm edda",
        "topics_exclude": "football",
        "created_at": "2026-03-01T12:00:00+00:00",
        "updated_at": "2026-03-01T12:00:00+00:00",
    }


# Personalisation, on editions built by hand


def _article(title: str, n: int) -> Article:
    return Article(
        key=f"https://news.example/{n}",
        title=title,
        url=f"https://news.example/{n}",
        source="Wire",
        feed_url="https://news.example/feed",
        published=datetime(2026, 3, 19, 6, n, tzinfo=UTC),
    )


EDITION = Edition(
    id="digest/2026-03-19",
    generated_at=datetime(2026, 3, 19, 7, tzinfo=UTC),
    window_start=datetime(2026, 3, 18, 7, tzinfo=UTC),
    window_end=datetime(2026, 3, 19, 7, tzinfo=UTC),
    themes=[
        Theme(
            label="Storm · Edda · Coastal",
            articles=[_article("Storm Edda floods towns", 1), _article("Coast braces", 2)],
        ),
        Theme(
            label="Gaza · Cairo · Talks",
            articles=[_article("Gaza talks resume", 3), _article("Aid stalls", 4)],
        ),
        Theme(
            label="Other news",
            articles=[
                _article("Rail lines closed by storm", 5),
                _article("Trailblazer wins award", 6),
                _article("Champions League late goal", 7),
            ],
        ),
    ],
    feeds=[],
)


def _titles(edition: Edition | None) -> list[str]:
    assert edition is not None
    return [a.title for t in edition.themes for a in t.articles]


def test_without_topics_the_edition_is_unchanged() -> None:
    assert personalise(EDITION, Subscriber(email="a@example.com")) == EDITION


def test_included_topics_keep_the_articles_that_match_whatever_their_theme() -> None:
    sub = Subscriber(email="a@example.com", topics_include=["STORM", "rail"])

    mine = personalise(EDITION, sub)

    assert _titles(mine) == [
        "Storm Edda floods towns",
        "Rail lines closed by storm",  # not "Trailblazer": whole words only
    ]
    assert [t.label for t in mine.themes] == ["Storm · Edda · Coastal", "Other news"]
    assert mine.themes[1].lead.title == "Rail lines closed by storm"


def test_excluded_topics_drop_only_the_articles_that_contain_them() -> None:
    sub = Subscriber(email="a@example.com", topics_exclude=["gaza", "champions league"])

    mine = personalise(EDITION, sub)

    # "Aid stalls" shares the Gaza theme's label but not its words: it stays.
    assert _titles(mine) == [
        "Storm Edda floods towns",
        "Coast braces",
        "Aid stalls",
        "Rail lines closed by storm",
        "Trailblazer wins award",
    ]


@pytest.mark.parametrize(
    ("topic", "title", "matched"),
    [
        # A followed theme's label finds its story told in other words.
        ("Trump and Putin's Call", "Putin's call with Trump yields energy truce", True),
        ("Trump and Putin's Call", "Trump calls Putin", True),  # a word's forms count
        # A word's usual forms count, a plural topic finds the singular.
        ("ECB rate cut", "ECB cuts interest rates", True),
        ("Apple fine", "Apple fined in EU", True),
        ("strike", "Striking workers march", True),
        ("tariffs", "New tariff on steel", True),
        ("news", "New model unveiled", False),
        ("cut", "Cutlery sales rise", False),
        # Short capitals are an abbreviation, not the word they spell.
        ("US", "Tell us what you think", False),
        ("US", "US tariffs rise", True),
        ("WHO", "Who won the election?", False),
        ("Trump and Putin's Call", "Putin rejects call for ceasefire", False),
        ("champions league", "League leaders eye Champions place", True),
        # In quotes, the phrase as written, across any whitespace.
        ('"champions league"', "League leaders eye Champions place", False),
        ('"central bank"', "Central\nbank holds rates", True),
        ("rail", "Trailblazer wins award", False),
        ("U.S.", "U.S. tariffs rise", True),
        # Close together in the title or in the summary, not anywhere at all.
        ("Apple TV", "Apple shares rise\nAnalysts expect TV ad spending to grow", False),
        (
            "World Cup",
            "World leaders meet in Paris on climate finance; later ministers share a cup of tea",
            False,
        ),
        # One telling word: matched as written, its punctuation and small words too.
        ("The Who", "The Who tour", True),
        ("The Who", "WHO declares emergency", False),
        (".NET", "Net zero pledge", False),
        ("it's", "it rains", False),
        # Curly and straight apostrophes, composed and decomposed accents, are one.
        ("O'Brien", "O’Brien wins", True),
        ('"Putin\'s call"', "Putin’s call ends", True),
        ("Zürich", "Zu\u0308rich bank fined", True),
    ],
)
def test_a_topic_of_several_words_matches_a_text_holding_them_all(
    topic: str, title: str, matched: bool
) -> None:
    matches = topic_matcher([topic])
    assert matches is not None
    assert matches(title) is matched


@pytest.mark.parametrize("topic", ['""', "-", "..."])
def test_a_topic_with_no_word_to_find_is_refused(topic: str) -> None:
    with pytest.raises(InvalidField, match="no letter or digit"):
        parse_topics(f"climate; {topic}")


def test_a_followed_label_keeps_the_story_in_other_words_and_a_muted_one_drops_it() -> None:
    edition = EDITION.model_copy(
        update={
            "themes": [
                Theme(
                    label="Putin and Trump",
                    articles=[
                        _article("Putin's call with Trump yields energy truce", 1),
                        _article("Kremlin denies drone strikes", 2),
                    ],
                )
            ]
        }
    )
    follow = Subscriber(email="a@example.com", topics_include=["Trump and Putin's Call"])
    mute = Subscriber(email="a@example.com", topics_exclude=["Trump and Putin's Call"])

    assert _titles(personalise(edition, follow)) == ["Putin's call with Trump yields energy truce"]
    assert _titles(personalise(edition, mute)) == ["Kremlin denies drone strikes"]


def test_nothing_left_means_none_and_hidden_themes_stay_hidden() -> None:
    assert (
        personalise(EDITION, Subscriber(email="a@example.com", topics_include=["cricket"])) is None
    )
    hidden = EDITION.model_copy(
        update={"themes": [t.model_copy(update={"shown": False}) for t in EDITION.themes]}
    )
    assert personalise(hidden, Subscriber(email="a@example.com")) is None


# Personalised delivery, end to end


HEADLINE_WORDS = ["Storm Edda", "Gaza", "Migration", "Champions League", "Exoplanet", "Truce"]


def _body_text(message) -> str:
    return "\n".join(part.get_content() for part in message.walk() if not part.is_multipart())


def test_topics_and_format_shape_what_each_subscriber_receives(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    feeds = serve_samples(feed_server)
    env = digest_env(tmp_path, DIGEST_FEEDS=",".join(feeds), **smtp_sink.env())
    people = [
        ["storm@example.com", "--topics", "Storm Edda"],
        ["nogaza@example.com", "--exclude", "Gaza"],
        ["plain@example.com", "--format", "text"],
        ["cricket@example.com", "--topics", "cricket"],
    ]
    for args in people:
        assert invoke(["subscribers", "add", *args], env, tmp_path).returncode == 0

    result = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)

    assert result.returncode == 0, result.stderr
    received = {m["To"].addresses[0].addr_spec: m for m in smtp_sink.messages}
    assert set(received) == {"storm@example.com", "nogaza@example.com", "plain@example.com"}
    assert f"skipping {subscriber_ref('cricket@example.com')}" in result.stderr
    assert "cricket@example.com" not in result.stderr, "addresses never reach the log"

    storm = _body_text(received["storm@example.com"])
    assert "Storm Edda" in storm
    assert not [w for w in HEADLINE_WORDS if w != "Storm Edda" and w in storm], storm
    # A short digest says what narrowed it, in both parts.
    for part in received["storm@example.com"].walk():
        if not part.is_multipart():
            assert "Narrowed by your topics: only headlines about Storm Edda" in " ".join(
                part.get_content().split()
            )

    # A muted word is counted, never named: the reader chose not to read it.
    nogaza = _body_text(received["nogaza@example.com"])
    assert "Gaza" not in nogaza and "Storm Edda" in nogaza and "Migration" in nogaza
    assert "Narrowed by your topics: 1 topic muted" in " ".join(nogaza.split())

    assert "Narrowed" not in received["plain@example.com"].get_content()

    plain = received["plain@example.com"]
    assert plain.get_content_type() == "text/plain" and not plain.is_multipart()
    assert "Storm Edda" in plain.get_content() and "<html" not in plain.get_content().lower()
    assert received["storm@example.com"].get_content_type() == "multipart/alternative"


def test_quiet_day_note_goes_to_those_whose_topics_match_nothing(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    feeds = serve_samples(feed_server)
    env = digest_env(
        tmp_path, DIGEST_FEEDS=",".join(feeds), DIGEST_QUIET_DAY="note", **smtp_sink.env()
    )
    invoke(["subscribers", "add", "cricket@example.com", "--topics", "cricket"], env, tmp_path)

    result = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)

    assert result.returncode == 0, result.stderr
    (message,) = smtp_sink.messages
    body = _body_text(message)
    assert not [w for w in HEADLINE_WORDS if w in body], body
    assert "quiet-day note" in result.stderr


def test_no_message_is_sent_without_a_secret_key_and_check_says_so(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    feeds = serve_samples(feed_server)
    env = digest_env(tmp_path, DIGEST_FEEDS=",".join(feeds), **smtp_sink.env())
    env["DIGEST_SECRET_KEY"] = ""
    invoke(["subscribers", "add", "ann@example.com"], env, tmp_path)

    result = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)
    checked = invoke(["check"], env, tmp_path)

    assert result.returncode == 2
    assert "DIGEST_SECRET_KEY is not set" in result.stderr and "digest secret" in result.stderr
    assert "Traceback" not in result.stderr
    assert smtp_sink.envelopes == []
    assert checked.returncode == 1 and "DIGEST_SECRET_KEY is not set" in checked.stdout
    dry = invoke(["run", "--dry-run", "--now", SAMPLE_NOW], env, tmp_path)
    assert dry.returncode == 0, dry.stderr

    env["DIGEST_SECRET_KEY"] = invoke(["secret"], env, tmp_path).stdout.strip()
    assert len(env["DIGEST_SECRET_KEY"]) >= 40
    ready = invoke(["check"], env, tmp_path)
    assert ready.returncode == 0 and "0 failed" in ready.stdout
