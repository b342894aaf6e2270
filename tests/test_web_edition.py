"""The edition on the web and the email that leads to it.

Real parts throughout: busy days of real headlines grouped for real, a real
`digest serve`, mail received by aiosmtpd and parsed with `email`, pages shown
in Debian's Chromium. Screenshots are kept in tests/artifacts/.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import feedparser
import httpx
import pytest
from bs4 import BeautifulSoup
from busy_day import busy_day
from support import CHROMIUM_ARGS, SAMPLE_NOW, MailSink, digest_env, invoke
from webserve import SECRET, Served, artifact, chromium_path, serving

from digest.config import Settings
from digest.db import Database
from digest.group import ALSO_TODAY
from digest.links import anchor
from digest.models import Edition, Subscriber, Theme
from digest.render import Renderer, headline_count
from digest.tokens import read_token

DAYS = ("2026-03-17", "2026-03-18", "2026-03-19")


@dataclass
class Archive:
    served: Served
    editions: dict[str, Edition]  # by date


@pytest.fixture(scope="module")
def busy() -> Edition:
    return busy_day(300, DAYS[-1])


@pytest.fixture
def archive(tmp_path: Path, busy: Edition) -> Iterator[Archive]:
    """`digest serve` over three stored editions, the last a 300-headline day."""
    env = digest_env(tmp_path)
    editions = {DAYS[0]: busy_day(12, DAYS[0], seed=1), DAYS[1]: busy_day(40, DAYS[1], seed=2)}
    editions[DAYS[2]] = busy
    store = Database(env["DIGEST_DATABASE_URL"])
    for edition in editions.values():
        store.editions.save(edition)
    store.subscribers.add(Subscriber(email="ann@example.com"))
    store.close()
    with serving(tmp_path, env) as served:
        yield Archive(served, editions)


def _headlines(edition: Edition) -> list[str]:
    """Every headline of the edition as a browser shows it (spaces collapsed)."""
    return sorted(
        " ".join(a.title.split())
        for t in edition.themes
        for a in t.articles
        if a.duplicate_of is None
    )


def _shown_headlines(page) -> list[str]:
    """The headlines on a digest page: each theme's lead, then each item's first line."""
    leads = page.locator("td.pad p.lead").all_inner_texts()
    items = [text.split("\n")[0] for text in page.locator("td.item").all_inner_texts()]
    return sorted(" ".join(t.split()) for t in [*leads, *items])


def test_web_edition_shows_every_headline_on_desktop_and_phone(archive: Archive) -> None:
    from playwright.sync_api import sync_playwright

    edition = archive.editions[DAYS[2]]
    expected = _headlines(edition)
    assert len(expected) == headline_count(edition) and len(expected) > 250
    folded = {a.source for t in edition.themes for a in t.articles if a.duplicate_of}
    url = f"{archive.served.base_url}/editions/{DAYS[2]}"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            for width, name in ((1280, "desktop"), (375, "phone")):
                page = browser.new_page(viewport={"width": width, "height": 900})
                response = page.goto(url)
                assert response is not None and response.status == 200
                assert _shown_headlines(page) == expected, name
                text = page.inner_text("body")
                assert all(source in text for source in folded)  # also reported by
                assert len(page.locator("h2").all()) == len(edition.themes)
                # Readable on a phone: nothing wider than the screen.
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, (name, overflow)
                page.screenshot(path=str(artifact(f"web-edition-{name}-top.png")))
                page.evaluate("document.querySelectorAll('h2')[1].scrollIntoView()")
                page.screenshot(path=str(artifact(f"web-edition-{name}-theme.png")))
                page.screenshot(path=str(artifact(f"web-edition-{name}.png")), full_page=True)
                page.close()

            page = browser.new_page(viewport={"width": 375, "height": 800})
            page.goto(f"{archive.served.base_url}/editions")
            listed = page.locator("ol.editions li a").all_inner_texts()
            assert listed == ["Thursday 19 March 2026", "Wednesday 18 March 2026",
                              "Tuesday 17 March 2026"]  # fmt: skip
            page.screenshot(path=str(artifact("web-archive-phone.png")), full_page=True)
            page.click("text=Tuesday 17 March 2026")
            assert _shown_headlines(page) == _headlines(archive.editions[DAYS[0]])
        finally:
            browser.close()


def test_atom_feed_validates_and_links_each_edition(archive: Archive) -> None:
    base = archive.served.base_url
    response = httpx.get(f"{base}/feed.xml")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    links = [entry.link for entry in feed.entries]
    assert links == [f"{base}/editions/{day}" for day in reversed(DAYS)]
    for entry in feed.entries:
        assert entry.id == entry.link and entry.updated_parsed and entry.title
        page = httpx.get(entry.link)
        assert page.status_code == 200 and "public" in page.headers["cache-control"]


def test_archive_off_serves_no_edition(tmp_path: Path, busy: Edition) -> None:
    env = digest_env(tmp_path, DIGEST_ARCHIVE="off")
    store = Database(env["DIGEST_DATABASE_URL"])
    store.editions.save(busy)
    store.close()
    with serving(tmp_path, env) as served:
        for path in ("/editions", f"/editions/{DAYS[2]}", "/feed.xml"):
            assert httpx.get(served.base_url + path).status_code == 404, path
        assert httpx.get(served.base_url + "/").status_code == 200


def test_a_327_headline_day_fits_one_email_with_links_to_the_rest() -> None:
    day = busy_day(327)
    total = headline_count(day)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, secret_key=SECRET, public_url="https://news.example.org"
    )

    rendered = Renderer(settings).render(day, Subscriber(email="ann@example.com"))

    assert rendered.html is not None
    assert len(rendered.html.encode()) < 100_000
    page = BeautifulSoup(rendered.html, "html.parser")
    assert len(page.find_all("h2")) == 10
    edition = "https://news.example.org/editions/2026-03-19"
    more = page.find_all("a", string=re.compile(r"^\+\d+ more on this theme$"))
    assert more and all(a["href"].startswith(edition + "#theme-") for a in more)
    hidden = sum(int(a.get_text().split()[0]) for a in more)
    shown = len(page.select("td.pad h2 ~ p.lead")) + len(page.select("td.item"))
    assert (
        shown
        + hidden
        + sum(
            1 + len([a for a in t.articles[1:] if a.duplicate_of is None])
            for t in day.themes
            if not t.shown
        )
        == total
    )
    everything = page.find("a", string=re.compile(r"All \d+ headlines from today"))
    assert everything is not None and everything["href"] == edition
    assert f"All {total} headlines from today" in everything.get_text()
    for words in ("plain-text", "plain text", "text version"):
        assert words not in rendered.html.lower()
    assert f"All {total} headlines from today:\n{edition}\n" in rendered.text
    # Every "+N more" link names a theme heading, as the web edition's headings are named.
    headings = {h["id"] for h in page.find_all("h2")}
    assert {urlsplit(a["href"]).fragment for a in more} <= headings
    assert headings == {anchor(t.label) for t in day.themes if t.shown}


@pytest.mark.parametrize(
    "setting", [{}, {"public_url": "https://news.example.org", "archive": "off"}]
)
def test_without_a_public_web_edition_the_email_mentions_none(setting: dict) -> None:
    settings = Settings(_env_file=None, secret_key=SECRET, **setting)  # type: ignore[call-arg]

    rendered = Renderer(settings).render(busy_day(327), Subscriber(email="ann@example.com"))

    assert rendered.html is not None and len(rendered.html.encode()) < 100_000
    page = BeautifulSoup(rendered.html, "html.parser")
    assert len(page.find_all("h2")) == 10
    assert "/editions" not in rendered.html and "/editions" not in rendered.text
    assert "headlines from today" not in rendered.html
    assert page.find(string=re.compile(r"\+\d+ more on this theme")) is not None
    for words in ("plain-text", "plain text", "web", "online"):
        assert words not in page.get_text(" ").lower(), words


def test_manage_preferences_from_a_received_message_then_unsubscribe_and_resubscribe(
    archive: Archive, smtp_sink: MailSink
) -> None:
    from playwright.sync_api import sync_playwright

    served = archive.served
    sent = invoke(["run", "--now", SAMPLE_NOW], {**served.env, **smtp_sink.env()}, served.cwd)
    assert sent.returncode == 0, sent.stderr
    (message,) = smtp_sink.messages
    html = BeautifulSoup(message.get_body(("html",)).get_content(), "html.parser")
    text = message.get_body(("plain",)).get_content()
    manage = html.find("a", string="Manage preferences")["href"]
    unsubscribe = html.find("a", string="Unsubscribe")["href"]
    assert manage in text and unsubscribe in text
    assert manage.startswith(served.base_url + "/preferences?token=")
    # The token names no one: no part of it decodes to the address.
    token = parse_qs(urlsplit(manage).query)["token"][0]
    for part in token.split("."):
        decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        assert b"ann@example.com" not in decoded
    assert base64.urlsafe_b64encode(b"ann@example.com").decode().rstrip("=") not in token
    assert read_token(SECRET, token).public_id == served.subscriber("ann@example.com").public_id
    assert "ann@example.com" not in message["List-Unsubscribe"]
    everything = html.find("a", string=re.compile(r"All \d+ headlines from today"))
    assert everything is not None

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 800})
            page.goto(everything["href"])
            assert page.locator("h2").count() >= 1
            page.goto(manage)
            assert "ann@example.com" in page.inner_text("main")
            # Recent themes are offered to follow or mute.
            assert page.locator("input[name=follow]").count() >= 3
            page.screenshot(path=str(artifact("preferences-phone.png")), full_page=True)
            page.click("main >> text=Unsubscribe")
            page.click("button:has-text('Unsubscribe')")
            page.wait_for_selector("text=You are unsubscribed")
            assert served.status("ann@example.com") == "unsubscribed"
            page.screenshot(path=str(artifact("unsubscribed-phone.png")), full_page=True)
            page.click("button:has-text('Resubscribe')")
            page.wait_for_selector("text=You are subscribed again")
            assert served.status("ann@example.com") == "active"
        finally:
            browser.close()


def test_a_subscriber_with_topics_is_not_told_a_count_that_is_not_theirs() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, secret_key=SECRET, public_url="https://news.example.org"
    )
    day = busy_day(120)
    reader = Subscriber(email="ann@example.com", topics_exclude=[day.themes[0].label])

    rendered = Renderer(settings).render(day, reader)

    page = BeautifulSoup(rendered.html or "", "html.parser")
    link = page.find("a", string=re.compile("All of today's headlines"))
    assert link is not None and link["href"] == "https://news.example.org/editions/2026-03-19"
    assert "All of today's headlines:\nhttps://news.example.org/editions/2026-03-19" in (
        rendered.text
    )


def test_a_capped_also_today_list_links_the_rest_and_the_web_edition_shows_it_whole(
    tmp_path: Path,
) -> None:
    day = busy_day(40, DAYS[-1])
    news = [t for t in day.themes if not t.catch_all][:2]
    strays = [a for t in day.themes[2:] for a in t.articles if a.duplicate_of is None][:9]
    also = Theme(
        label=ALSO_TODAY,
        articles=[a.model_copy(update={"shown": n < 5}) for n, a in enumerate(strays)],
        catch_all=True,
    )
    edition = day.model_copy(update={"themes": [*news, also]})
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, secret_key=SECRET, public_url="https://news.example.org"
    )

    rendered = Renderer(settings).render(edition, Subscriber(email="ann@example.com"))

    page = BeautifulSoup(rendered.html or "", "html.parser")
    more = page.find("a", string="+4 more")
    assert more is not None
    assert more["href"] == f"https://news.example.org/editions/{DAYS[-1]}#{anchor(ALSO_TODAY)}"
    assert page.find("h2", id=anchor(ALSO_TODAY)) is not None
    assert "plain-text" not in rendered.html.lower()  # type: ignore[union-attr]
    assert f"+4 more:\n{more['href']}\n" in rendered.text

    env = digest_env(tmp_path)
    store = Database(env["DIGEST_DATABASE_URL"])
    store.editions.save(edition)
    store.close()
    with serving(tmp_path, env) as served:
        web = httpx.get(f"{served.base_url}/editions/{DAYS[-1]}")
    assert web.status_code == 200
    section = BeautifulSoup(web.text, "html.parser").find("h2", id=anchor(ALSO_TODAY))
    listed = section.find_parent("td").select("td.item a")  # type: ignore[union-attr]
    assert [a.get_text() for a in listed] == [a.title for a in strays]
