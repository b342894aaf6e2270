"""`digest preview` as operators run it: files, SpamAssassin, --serve in headless Chromium."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from support import (
    CHROMIUM_ARGS,
    SAMPLE_FEEDS,
    SAMPLE_NOW,
    FeedServer,
    MailSink,
    digest_env,
    invoke,
    serving,
    spawn,
)
from test_render import sample, settings

from digest.db import Database
from digest.models import MailFormat, Subscriber
from digest.preview import write_preview
from digest.tokens import read_token


def _feeds(feed_server: FeedServer) -> str:
    urls = []
    for path in sorted(SAMPLE_FEEDS.glob("*.xml")):
        shutil.copy(path, feed_server.root / path.name)
        urls.append(feed_server.url(path.name))
    return ",".join(urls)


def _message(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def test_preview_writes_html_text_and_the_message_exactly_as_sent(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    env = digest_env(tmp_path, DIGEST_FEEDS=_feeds(feed_server))
    out = tmp_path / "out"

    result = invoke(["preview", "--now", SAMPLE_NOW, "--out", str(out)], env, tmp_path)

    assert result.returncode == 0, result.stderr
    for name in ("digest.html", "digest.txt", "digest.eml"):
        assert f"wrote {out / name}" in result.stdout
    message = _message(out / "digest.eml")
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.get_payload()
    # The .eml is the wire format, CRLF line ends; otherwise each part is its file.
    assert _lf(text.get_content()) == (out / "digest.txt").read_text(encoding="utf-8")
    assert _lf(html.get_content()).rstrip("\n") == (out / "digest.html").read_text(
        encoding="utf-8"
    ).rstrip("\n")
    assert message["To"].addresses[0].addr_spec == "reader@example.com"
    assert str(message["Subject"]).startswith("Your morning digest, Thu 19 Mar: ")
    page = BeautifulSoup(html.get_content(), "html.parser")
    assert "Storm Edda Brings Flooding to Coastal Towns" in page.get_text()


def test_preview_for_a_chosen_subscriber_uses_their_zone_and_signed_link(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    env = digest_env(tmp_path, DIGEST_FEEDS=_feeds(feed_server))
    added = invoke(
        ["subscribers", "add", "kei@example.jp", "--timezone", "Asia/Tokyo"], env, tmp_path
    )
    assert added.returncode == 0, added.stderr
    out = tmp_path / "out"

    result = invoke(
        ["preview", "--now", SAMPLE_NOW, "--subscriber", "kei@example.jp", "--out", str(out)],
        env,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert _message(out / "digest.eml")["To"].addresses[0].addr_spec == "kei@example.jp"
    page = BeautifulSoup((out / "digest.html").read_text(encoding="utf-8"), "html.parser")
    assert "times in Asia/Tokyo" in page.get_text()
    # 01:00 UTC in the sample feeds is 10:00 in Tokyo.
    assert "The Daily Ledger · 10:00" in page.get_text(" ", strip=True)
    href = page.find("a", string="Unsubscribe")["href"]
    token = parse_qs(urlsplit(href).query)["token"][0]
    stored = Database(env["DIGEST_DATABASE_URL"])
    try:
        kei = stored.subscribers.get("kei@example.jp")
    finally:
        stored.close()
    assert kei is not None
    assert read_token(env["DIGEST_SECRET_KEY"], token).public_id == kei.public_id


def test_without_a_signing_key_a_dry_run_shows_placeholders_and_a_real_run_sends_nothing(
    tmp_path: Path, feed_server: FeedServer, smtp_sink: MailSink
) -> None:
    env = digest_env(tmp_path, DIGEST_FEEDS=_feeds(feed_server), **smtp_sink.env())
    env.pop("DIGEST_SECRET_KEY")
    assert invoke(["subscribers", "add", "ann@example.com"], env, tmp_path).returncode == 0

    dry = invoke(["run", "--dry-run", "--now", SAMPLE_NOW], env, tmp_path)
    real = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)

    assert dry.returncode == 0, dry.stderr
    text = (tmp_path / "preview" / "digest.txt").read_text(encoding="utf-8")
    assert "[preview placeholder: set DIGEST_SECRET_KEY for real links]" in text
    assert real.returncode == 2
    assert "configuration error: DIGEST_SECRET_KEY is not set" in real.stderr
    assert "Traceback" not in real.stderr
    assert smtp_sink.envelopes == []


def test_a_text_only_subscribers_preview_leaves_no_stale_html(tmp_path: Path) -> None:
    write_preview(sample(), settings(), tmp_path)
    assert (tmp_path / "digest.html").is_file()
    reader = Subscriber(email="plain@example.com", format=MailFormat.text)

    paths = write_preview(sample(), settings(), tmp_path, reader)

    assert paths == [tmp_path / "digest.txt", tmp_path / "digest.eml"]
    assert not (tmp_path / "digest.html").exists()
    message = _message(tmp_path / "digest.eml")
    assert message.get_content_type() == "text/plain"
    assert _lf(message.get_content()) == (tmp_path / "digest.txt").read_text(encoding="utf-8")


def test_previewed_message_scores_under_one_with_spamassassin(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    spamassassin = shutil.which("spamassassin")
    if spamassassin is None:
        pytest.fail("SpamAssassin is not installed: `apt-get install spamassassin` (.ci/run does)")
    env = digest_env(
        tmp_path,
        DIGEST_FEEDS=_feeds(feed_server),
        DIGEST_FROM_ADDRESS="digest@news.example.org",
        DIGEST_PUBLIC_URL="https://news.example.org",
        DIGEST_POSTAL_ADDRESS="1 Example Street, 75001 Paris, France",
    )
    out = tmp_path / "out"
    result = invoke(["preview", "--now", SAMPLE_NOW, "--out", str(out)], env, tmp_path)
    assert result.returncode == 0, result.stderr

    scored = subprocess.run(
        [spamassassin, "-L", "-t"],
        input=(out / "digest.eml").read_bytes(),
        capture_output=True,
        timeout=120,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )

    report = scored.stdout.decode("utf-8", "replace")
    found = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", report, re.MULTILINE)
    assert found, f"no X-Spam-Status in SpamAssassin's output:\n{report[-2000:]}{scored.stderr}"
    details = report[report.find("Content analysis details") :]
    assert float(found.group(1)) < 1.0, details


@pytest.fixture
def preview_server(tmp_path: Path, feed_server: FeedServer) -> Iterator[tuple[str, dict]]:
    """`digest preview --serve` running as a subprocess; yields its URL and environment."""
    env = digest_env(tmp_path, DIGEST_FEEDS=_feeds(feed_server))
    process = spawn(["preview", "--now", SAMPLE_NOW, "--serve"], env, tmp_path)
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            found = re.search(r"serving the preview at (http://127\.0\.0\.1:\d+/)", line)
            url = found.group(1) if found else None
        if url is None:
            process.kill()
            pytest.fail(f"`digest preview --serve` did not start: {process.stderr.read()}")  # type: ignore[union-attr]
        yield url, env
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_preview_serve_shows_the_digest_in_chromium_at_desktop_and_phone_width(
    tmp_path: Path, preview_server: tuple[str, dict]
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: `apt-get install chromium` (.ci/run does)")
    from playwright.sync_api import sync_playwright

    url, env = preview_server
    edition = invoke(["preview", "--now", SAMPLE_NOW, "--format", "json"], env, tmp_path)
    labels = [t["label"] for t in json.loads(edition.stdout)["themes"]]
    assert len(labels) >= 3

    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for name, width in (("desktop", 1280), ("phone", 375)):
                page = browser.new_page(viewport={"width": width, "height": 1000})
                page.on("request", lambda request: requested.append(request.url))
                page.goto(url)
                headers = page.locator("header").inner_text()
                assert "Your morning digest, Thu 19 Mar:" in headers
                assert "reader@example.com" in headers
                digest = page.frame_locator("iframe")
                for label in labels:
                    heading = digest.get_by_role("heading", name=label, exact=True)
                    assert heading.is_visible(), f"theme {label!r} not visible at {width}px"
                frame = next(f for f in page.frames if f.url.endswith("/digest.html"))
                assert frame.evaluate("document.documentElement.scrollWidth") <= width
                shot = tmp_path / f"preview-{name}.png"
                page.screenshot(path=str(shot))
                assert shot.stat().st_size > 10_000

                page.get_by_role("link", name="Plain text").click()
                page.wait_for_url("**/?view=text")
                text = page.frame_locator("iframe").locator("body").inner_text()
                assert all(label in text for label in labels)
                assert "More on this theme:" in text
                page.close()
            # Dark mode: the digest's own dark colours apply, not a client's guess.
            page = browser.new_page(viewport={"width": 375, "height": 800}, color_scheme="dark")
            page.goto(url)
            page.frame_locator("iframe").locator("h1").wait_for()
            frame = next(f for f in page.frames if f.url.endswith("/digest.html"))
            background = frame.evaluate(
                "getComputedStyle(document.querySelector('.page td')).backgroundColor"
            )
            assert background == "rgb(28, 28, 28)"
            page.screenshot(path=str(tmp_path / "preview-phone-dark.png"))
        finally:
            browser.close()
    assert requested and all(u.startswith(url) for u in requested), requested


def test_a_window_that_ends_before_it_starts_is_refused(tmp_path: Path) -> None:
    late = ["--since", "2026-03-20T00:00:00Z", "--now", SAMPLE_NOW]
    for command in (["preview"], ["run", "--dry-run"], ["run"]):
        result = invoke([*command, *late], digest_env(tmp_path), tmp_path)
        assert result.returncode == 1, result.stderr
        assert "error: --since 2026-03-20T00:00:00+00:00 is not before the window's end" in (
            result.stderr
        )
        assert "pass an earlier --since" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["preview"], ["run", "--dry-run"]])
def test_a_preview_folder_that_cannot_be_written_is_named_before_any_feed_is_fetched(
    tmp_path: Path, feed_server: FeedServer, command: list[str]
) -> None:
    env = digest_env(tmp_path, DIGEST_FEEDS=_feeds(feed_server))
    taken = tmp_path / "taken"
    taken.write_text("an operator's file\n")
    for out, reason in ((taken, "it is a file, not a folder"), (taken / "sub", "Not a directory")):
        result = invoke([*command, "--now", SAMPLE_NOW, "--out", str(out)], env, tmp_path)
        assert result.returncode == 1, result.stderr
        assert f"error: cannot write the preview to {out}: {reason}" in result.stderr
        assert "--out" in result.stderr and "Traceback" not in result.stderr
        assert "edition" not in result.stdout  # stopped before collecting
    assert taken.read_text() == "an operator's file\n"


def test_after_a_run_the_preview_shows_the_edition_that_was_sent(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """Runs reuse the day's stored edition, so previews and dry runs show that one too."""
    env = digest_env(tmp_path, DIGEST_FEEDS=_feeds(feed_server))
    invoke(["subscribers", "add", "ann@example.com"], env, tmp_path)
    with serving() as sink:
        sent = invoke(["run", "--now", SAMPLE_NOW], {**env, **sink.env()}, tmp_path)
    assert sent.returncode == 0, sent.stderr
    received = sink.messages[0].get_body(("plain",)).get_content()

    env["DIGEST_FEEDS"] = feed_server.url(sorted(SAMPLE_FEEDS.glob("*.xml"))[0].name)
    shown = invoke(["preview", "--now", SAMPLE_NOW, "--format", "json"], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)["feeds"]) == 3  # the sent edition's, not today's one
    assert "as built at" in shown.stderr
    out = tmp_path / "dry"
    dry = invoke(["run", "--dry-run", "--now", SAMPLE_NOW, "--out", str(out)], env, tmp_path)
    assert dry.returncode == 0, dry.stderr
    previewed = _message(out / "digest.eml").get_body(("plain",)).get_content()
    glance = [line for line in _lf(received).splitlines() if re.match(r"\d+\. ", line)]
    assert len(glance) > 3 and all(line in _lf(previewed).splitlines() for line in glance)
    assert "20 headlines in 7 themes" in " ".join(previewed.split())
    # --feeds asks for another collection: trying a feed out still works after a run.
    tried = invoke(
        ["preview", "--now", SAMPLE_NOW, "--format", "json", "--feeds", env["DIGEST_FEEDS"]],
        env,
        tmp_path,
    )
    assert len(json.loads(tried.stdout)["feeds"]) == 1 and "as built at" not in tried.stderr


def test_a_subscriber_without_topics_gets_what_the_preview_shows_on_a_capped_day(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """With DIGEST_MAX_THEMES hiding themes, the message still counts every headline."""
    env = digest_env(
        tmp_path,
        DIGEST_FEEDS=_feeds(feed_server),
        DIGEST_MAX_THEMES="3",
        DIGEST_MAX_ARTICLES_PER_THEME="2",
        DIGEST_PUBLIC_URL="https://digest.example.org",
    )
    invoke(["subscribers", "add", "ann@example.com"], env, tmp_path)
    out = tmp_path / "out"
    previewed = invoke(["preview", "--now", SAMPLE_NOW, "--out", str(out)], env, tmp_path)
    assert previewed.returncode == 0, previewed.stderr
    with serving() as sink:
        sent = invoke(["run", "--now", SAMPLE_NOW], {**env, **sink.env()}, tmp_path)
    assert sent.returncode == 0, sent.stderr

    received = " ".join(sink.messages[0].get_body(("plain",)).get_content().split())
    shown = " ".join(_message(out / "digest.eml").get_body(("plain",)).get_content().split())
    assert "All 20 headlines from today" in received and "All 20 headlines" in shown
    assert received.count("more on this theme") == shown.count("more on this theme")
