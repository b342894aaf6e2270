"""Operations under stress: feed outages, operator mistakes, bad records, killed runs.

Real parts throughout: feeds on a loopback HTTP server, mail into aiosmtpd, a
SQLite file, `digest` run as a subprocess the way an operator runs it.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import FeedServer, MailSink, digest_env, free_port, run_digest

from digest.collect.probe import Problem, probe_feeds
from digest.config import load_settings

RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
    "<link>https://news.example.com/</link>{items}</channel></rss>"
)
ITEM = (
    "<item><title>{title}</title><link>https://news.example.com/{n}</link>"
    "<pubDate>{date}</pubDate><description>Story {n}.</description></item>"
)


def write_rss(server: FeedServer, name: str, title: str, dates: list[str]) -> str:
    items = "".join(
        ITEM.format(title=f"{title} story {n}", n=n, date=d) for n, d in enumerate(dates)
    )
    (server.root / name).write_text(RSS.format(title=title, items=items))
    return server.url(name)


# Settings: typos are caught, every message carries an example.


def test_misspelt_settings_in_env_file_and_environment_name_the_nearest(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DIGEST_SMTP_PROT=25\n")
    env = digest_env(tmp_path, DIGEST_SEND_CONECTIONS="8")

    listed = run_digest(["subscribers", "list"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "DIGEST_SMTP_PROT: no such setting; did you mean DIGEST_SMTP_PORT?" in listed.stderr
    assert (
        "DIGEST_SEND_CONECTIONS: no such setting; did you mean DIGEST_SEND_CONNECTIONS?"
        in listed.stderr
    )

    checked = run_digest(["check"], env, tmp_path)
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
    result = run_digest(["run", "--dry-run"], env, tmp_path)

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
    assert "'Harbour News', 2 entries, newest 2026-03-19 05:00 UTC" == found.describe()
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

    result = run_digest(["subscribers", "import", str(csv_file)], env, tmp_path)

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert not any(line.startswith(("INFO: all good", "FAKE LINE")) for line in lines)
    bad = [line for line in lines if ": line " in line]
    assert len(bad) == 2, result.stderr
    assert "\\n" in bad[0] and "\\r\\n" in bad[1]
