"""`digest feeds import|export|check` and feed health, run as an operator runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lxml import etree
from support import FeedServer, digest_env, invoke

FEEDS = Path(__file__).resolve().parent / "feeds"
NOW = "2026-03-19T07:00:00+00:00"


def test_import_nested_opml_then_export(tmp_path: Path) -> None:
    env = digest_env(tmp_path)

    # --no-check: its feeds are on example.com, out of reach (test_hostile_ops checks them).
    opml = ["feeds", "import", "--no-check", str(FEEDS / "nested.opml")]
    first = invoke(opml, env, tmp_path)
    again = invoke(opml, env, tmp_path)
    listed = invoke(["feeds", "list"], env, tmp_path)
    exported = invoke(["feeds", "export"], env, tmp_path)

    assert first.returncode == 0, first.stderr
    assert "imported 3 feeds (0 already listed, 0 unreadable)" in first.stdout
    assert "skipped file:///etc/passwd: only http(s) feeds are imported" in first.stderr
    assert "imported 0 feeds (3 already listed, 0 unreadable)" in again.stdout
    expected = [
        "https://planet.example.com/feed",
        "https://tech.example.org/atom.xml",
        "https://science.example.org/rss",
    ]
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == expected
    assert exported.returncode == 0, exported.stderr
    opml = etree.fromstring(exported.stdout.encode())
    outlines = opml.findall("./body/outline")
    assert [o.get("xmlUrl") for o in outlines] == expected
    assert outlines[0].get("title") == "The Daily Planet"

    # What was exported imports cleanly elsewhere.
    other = tmp_path / "other"
    other.mkdir()
    (other / "feeds.opml").write_text(exported.stdout, encoding="utf-8")
    reimported = invoke(["feeds", "import", "--no-check", "feeds.opml"], digest_env(other), other)
    assert "imported 3 feeds" in reimported.stdout, reimported.stderr


def test_import_refuses_what_is_not_opml_in_one_line(tmp_path: Path) -> None:
    env = digest_env(tmp_path)
    for name in ("rss20.xml", "bomb.xml"):
        result = invoke(["feeds", "import", str(FEEDS / name)], env, tmp_path)
        assert result.returncode == 1
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
        assert "Traceback" not in result.stderr
    assert (
        "not an OPML file"
        in invoke(["feeds", "import", str(FEEDS / "rss20.xml")], env, tmp_path).stderr
    )


def test_feeds_check_prints_a_table_and_fails_on_a_broken_feed(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    for name in ("rss20.xml", "atom10.xml"):
        shutil.copy(FEEDS / name, feed_server.root / name)
    good = [feed_server.url("rss20.xml"), feed_server.url("atom10.xml")]
    missing = feed_server.url("missing.xml")
    env = digest_env(tmp_path, DIGEST_FEEDS=",".join([*good, missing]))

    result = invoke(["feeds", "check"], env, tmp_path)

    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["STATUS", "ARTICLES", "SECONDS", "FEED"]
    rows = {line.split()[-1]: line.split() for line in lines[1:] if line.split()[-1] in good}
    assert rows[good[0]][:2] == ["ok", "3"]  # every entry, not only the window's
    assert rows[good[1]][:2] == ["ok", "2"]
    failing = next(line for line in lines if line.endswith(missing))
    assert failing.startswith("failing ")  # a check never counts toward dead
    assert "failing x" not in failing
    assert "HTTP 404" in result.stdout
    assert lines[-1] == "3 feeds, 1 failing"


def test_failing_feed_is_reported_in_previews_which_never_make_it_dead(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """Only real runs count toward dead (tests/test_hostile_ops.py has a run making one dead)."""
    shutil.copy(FEEDS / "rss20.xml", feed_server.root / "rss20.xml")
    good = feed_server.url("rss20.xml")
    missing = feed_server.url("missing.xml")
    env = digest_env(tmp_path, DIGEST_FEEDS=f"{good},{missing}", DIGEST_FEED_DEAD_AFTER="2")

    runs = [invoke(["preview", "--format", "json", "--now", NOW], env, tmp_path) for _ in range(2)]

    for result in runs:
        assert result.returncode == 0, result.stderr
    first, second = ({f["url"]: f for f in json.loads(r.stdout)["feeds"]} for r in runs)
    assert first[missing]["ok"] is False and first[missing]["dead"] is False
    assert second[missing]["ok"] is False and second[missing]["dead"] is False
    assert second[good]["ok"] and second[good]["articles"] == 2
    assert f"feed failed: {missing}" in runs[1].stderr
    assert "0 dead" in runs[1].stderr
