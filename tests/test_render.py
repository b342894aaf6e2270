"""Rendering fixture editions: the HTML read back with a parser, the text part line by line."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup

from digest.config import Settings
from digest.deliver import build_message
from digest.models import (
    Article,
    DigestError,
    Edition,
    MailFormat,
    Subscriber,
    Theme,
)
from digest.render import HTML_BUDGET, TEXT_WIDTH, Renderer, TemplateError
from digest.tokens import read_token

SECRET = "render-test-secret-long-enough-to-sign"
END = datetime(2026, 3, 19, 7, 0, tzinfo=UTC)
READER = Subscriber(email="ann@example.com", name="Ann", timezone="Europe/Paris")
URL_LINE = re.compile(r"^\s*https?://\S+$")


def settings(**values: object) -> Settings:
    values.setdefault("secret_key", SECRET)
    values.setdefault("postal_address", "1 Example Street, 75001 Paris, France")
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def article(n: int, title: str = "", **fields: object) -> Article:
    values: dict = {
        "key": f"https://news.example.com/{n}",
        "title": title or f"Headline number {n}",
        "url": f"https://news.example.com/{n}?ref=feed&x=1",
        "source": f"Source {n % 4}",
        "feed_url": "https://news.example.com/feed.xml",
        "published": END - timedelta(minutes=37 * n),
        "summary": f"Summary of story {n}.",
    }
    values.update(fields)
    return Article(**values)


def edition(themes: list[Theme]) -> Edition:
    return Edition(
        id="digest/2026-03-19",
        generated_at=END,
        window_start=END - timedelta(hours=24),
        window_end=END,
        themes=themes,
        feeds=[],
    )


def big_edition(themes: int = 12, per_theme: int = 10, words: int = 30) -> Edition:
    """Long titles and full summaries: the worst ordinary day."""
    filler = " ".join(["considerably"] * words)
    return edition(
        [
            Theme(
                label=f"Theme {t} label",
                articles=[
                    article(
                        t * 100 + i,
                        title=f"Story {t}-{i}: {filler}"[:200],
                        summary=f"Summary {t}-{i}. " + " ".join(["detail"] * 45),
                        also_reported_by=("Other Paper", "Third Wire"),
                    )
                    for i in range(per_theme)
                ],
            )
            for t in range(themes)
        ]
    )


def sample() -> Edition:
    return edition(
        [
            Theme(
                label="Ukraine energy truce",
                articles=[
                    article(1, "Ukraine and Russia agree energy truce", also_reported_by=("Wire",)),
                    article(2, "Truce to start Friday", summary=""),
                ],
            ),
            Theme(label="Gaza", articles=[article(3, "Gaza talks resume in Cairo")]),
            Theme(label="Hidden theme", articles=[article(4, "Not shown today")], shown=False),
        ]
    )


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def test_html_has_a_heading_per_shown_theme_in_rank_order_with_lead_and_more() -> None:
    rendered = Renderer(settings()).render(sample(), READER)
    page = soup(rendered.html)

    assert [h.get_text(strip=True) for h in page.find_all("h2")] == ["Ukraine energy truce", "Gaza"]
    assert "Not shown today" not in rendered.html
    first = page.find("h2").find_parent("td")
    lead = first.find("p", class_="lead").find("a")
    assert lead.get_text() == "Ukraine and Russia agree energy truce"
    assert lead["href"] == "https://news.example.com/1?ref=feed&x=1"
    byline = first.find("p", class_="meta").get_text(" ", strip=True)
    # 07:00Z - 37 min is 07:23 in Paris; the reader's zone, not UTC.
    assert byline == "Source 1 · 07:23 · also reported by Wire"
    assert first.find("p", class_="summary").get_text() == "Summary of story 1."
    assert first.find("h3").get_text() == "More on this theme"
    item = first.find("td", class_="item")
    assert item.find("a").get_text() == "Truce to start Friday"
    assert "Source 2 · 06:46" in item.get_text(" ", strip=True)
    glance = page.find("td", class_="glance").get_text(" ", strip=True)
    assert "1. Ukraine energy truce" in glance and "2. Gaza" in glance
    assert "times in Europe/Paris" in page.find("td", class_="masthead").get_text()


def test_footer_has_sender_reason_signed_unsubscribe_link_and_postal_address() -> None:
    rendered = Renderer(settings()).render(sample(), READER)
    footer = soup(rendered.html).find("td", class_="footer")

    link = footer.find("a", string="Unsubscribe")
    parts = urlsplit(link["href"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://127.0.0.1:8000/unsubscribe"
    assert read_token(SECRET, parse_qs(parts.query)["token"][0]).public_id == READER.public_id
    text = footer.get_text(" ", strip=True)
    assert "Morning Digest" in text and "ann@example.com is subscribed" in text
    assert "1 Example Street, 75001 Paris, France" in text
    assert "placeholder" not in footer.get_text() and "placeholder" not in rendered.text
    assert link["href"] in rendered.text.splitlines()
    assert "1 Example Street, 75001 Paris, France" in " ".join(rendered.text.split())


def test_preview_without_key_or_address_shows_marked_placeholders_but_sending_refuses() -> None:
    bare = settings(secret_key="", postal_address="")

    rendered = Renderer(bare, preview=True).render(sample(), READER)

    footer = soup(rendered.html).find("td", class_="footer")
    assert "PREVIEW-PLACEHOLDER" in footer.find("a", string="Unsubscribe")["href"]
    marks = [m.get_text() for m in footer.find_all("span", class_="placeholder")]
    assert any("DIGEST_SECRET_KEY" in m for m in marks)
    assert any("DIGEST_POSTAL_ADDRESS" in m for m in marks)
    assert "[preview placeholder: set DIGEST_SECRET_KEY for real links]" in rendered.text
    with pytest.raises(DigestError, match="DIGEST_SECRET_KEY is not set"):
        Renderer(bare)


HOSTILE_TITLE = '<script>alert("t")</script><img src=x onerror=alert(1)> Bold "claim"'


def hostile_edition() -> Edition:
    return edition(
        [
            Theme(
                label="<b>Label</b>\r\nBcc: victim@example.com",
                articles=[
                    article(
                        1,
                        HOSTILE_TITLE,
                        url="javascript:alert(document.cookie)",
                        summary="</td></tr></table><a href='javascript:x'>click</a>",
                    ),
                    article(
                        2,
                        "Second\nline\x1b[31m red",
                        source='Evil "Feed" <i>',
                        url='https://ok.example.com/"><script>x</script>',
                    ),
                    article(3, "Fine", url="  HTTPS://fine.example.com/a b  "),
                ],
            ),
            Theme(label="Gaza\u2028Second line", articles=[article(4, "Data link", url="data:x")]),
        ]
    )


def test_everything_from_feeds_reaches_the_reader_as_harmless_text() -> None:
    rendered = Renderer(settings()).render(hostile_edition(), READER)
    page = soup(rendered.html)

    assert page.find_all(["script", "img", "iframe", "object", "embed", "form"]) == []
    for tag in page.find_all(True):
        assert not [a for a in tag.attrs if a.lower().startswith("on")], tag
    hrefs = [a["href"] for a in page.find_all("a")]
    assert hrefs and all(re.match(r"^https?://[^\s\"'<>]+$", h) for h in hrefs), hrefs
    assert not any("javascript" in h.lower() for h in hrefs)
    body = page.get_text(" ", strip=True)
    assert HOSTILE_TITLE in body
    assert "</td></tr></table><a href='javascript:x'>click</a>" in body
    assert 'Evil "Feed" <i>' in body
    # The layout survived: one heading per theme and the footer still last.
    assert len(page.find_all("h2")) == 2
    assert page.find("td", class_="footer") is not None
    text_lines = rendered.text.splitlines()
    assert not any(line.strip().lower().startswith(("javascript:", "data:")) for line in text_lines)
    assert "Second line [31m red" in rendered.text
    assert "\x1b" not in rendered.text


def test_html_is_built_for_mail_clients() -> None:
    rendered = Renderer(settings()).render(sample(), READER)
    page = soup(rendered.html)

    assert page.find("meta", attrs={"name": "color-scheme"})["content"] == "light dark"
    assert page.find_all("link") == [] and page.find_all("script") == []
    # CSS was inlined: only @media rules stay in <style>, for phones and dark mode.
    styles = [s.get_text() for s in page.find_all("style")]
    assert all(s.strip().startswith("@media") for s in styles), styles
    assert "prefers-color-scheme: dark" in "".join(styles)
    assert "font-family" in page.find("td", class_="pad")["style"]
    assert {t.get("width") for t in page.find_all("table")} == {"600", "100%"}
    assert "max-width:600px" in page.find("table", class_="page")["style"].replace(" ", "")
    preheader = page.find("div", class_="preheader")
    assert "display:none" in preheader["style"].replace(" ", "")
    assert preheader.get_text().startswith(
        "Ukraine and Russia agree energy truce · Gaza talks resume in Cairo"
    )


def test_twelve_themes_of_ten_long_articles_stay_under_gmail_clipping_whole() -> None:
    rendered = Renderer(settings()).render(big_edition(), READER)
    page = soup(rendered.html)

    size = len(rendered.html.encode())
    assert size < HTML_BUDGET, size
    assert len(page.find_all("h2")) == 12
    assert len(page.find_all("td", class_="item")) == 12 * 9
    assert "left out" not in rendered.html


def test_an_oversized_edition_is_trimmed_by_whole_headlines_never_mid_tag() -> None:
    huge = big_edition(themes=14, per_theme=40, words=60)

    rendered = Renderer(settings()).render(huge, READER)
    page = soup(rendered.html)

    size = len(rendered.html.encode())
    assert size <= HTML_BUDGET, size
    assert rendered.html.rstrip().endswith("</html>")
    # Every theme keeps its heading and lead; only "more" items went, the same cap for each.
    assert len(page.find_all("h2")) == 14
    items = [len(td.find_all("td", class_="item")) for td in page.find_all("td", class_="pad")]
    shown = [n for n in items if n]
    assert shown and len(set(shown)) == 1 and shown[0] < 39
    left_out = 14 * 39 - sum(shown)
    note = page.find(string=re.compile("more headlines? left out"))
    assert note is not None and note.strip().startswith(f"{left_out} more headlines")
    assert page.find("td", class_="footer").find("a", string="Unsubscribe") is not None
    # Every reader of the edition gets the same headlines, whatever their address or zone.
    other = Subscriber(email="a.much.longer.address@example.org", timezone="Asia/Tokyo")
    again = soup(Renderer(settings()).render(huge, other).html)
    assert len(again.find_all("td", class_="item")) == sum(shown)
    # The text part is not clipped by Gmail and keeps every headline.
    for t in range(14):
        assert f"Story {t}-39:" in rendered.text


def test_when_even_bare_themes_are_too_many_trailing_themes_are_left_out() -> None:
    many = big_edition(themes=120, per_theme=3, words=60)

    rendered = Renderer(settings()).render(many, READER)
    page = soup(rendered.html)

    assert len(rendered.html.encode()) <= HTML_BUDGET
    headings = [h.get_text() for h in page.find_all("h2")]
    assert 1 <= len(headings) < 120
    assert headings == [f"Theme {t} label" for t in range(len(headings))]
    assert page.find(string=re.compile("more headlines? left out")) is not None


def test_text_part_is_written_for_reading_at_72_columns() -> None:
    rendered = Renderer(settings()).render(big_edition(themes=3, per_theme=4), READER)
    lines = rendered.text.splitlines()

    for line in lines:
        # URLs are never broken: a line holding only a URL may run longer.
        assert len(line) <= TEXT_WIDTH or URL_LINE.match(line), line
        assert line == line.rstrip() or line == "-- ", repr(line)
    for t in range(3):
        label = f"Theme {t} label"
        at = lines.index(label)
        assert lines[at + 1] == "-" * len(label)
    # Every headline: wrapped title, then source and time, then its URL.
    first = lines.index(next(line for line in lines if line.startswith("Story 0-0:")))
    byline = next(i for i in range(first, first + 6) if lines[i].startswith("Source "))
    assert re.match(r"^Source \d · (\w{3} )?\d\d:\d\d · also reported by", lines[byline])
    assert lines[byline + 1] == "https://news.example.com/0?ref=feed&x=1"
    assert "<" not in rendered.text.split("-- \n")[0]  # no markup, only words


def test_subject_names_the_date_and_top_two_themes_on_one_line() -> None:
    assert (
        Renderer(settings()).subject(sample(), READER)
        == "Your morning digest, Thu 19 Mar: Ukraine energy truce · Gaza"
    )
    hostile = Renderer(settings()).subject(hostile_edition(), READER)
    assert hostile == (
        "Your morning digest, Thu 19 Mar: <b>Label</b> Bcc: victim@example.com · Gaza Second line"
    )
    long = edition([Theme(label="word " * 80, articles=[article(1)])])
    assert len(Renderer(settings()).subject(long, READER)) <= 200


def test_hostile_subject_cannot_add_headers_to_the_sent_message() -> None:
    rendered = Renderer(settings()).render(hostile_edition(), READER)
    raw = bytes(build_message(rendered, READER, settings()))
    message = email.message_from_bytes(raw, policy=email.policy.default)

    assert message["Bcc"] is None
    assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])
    assert str(message["Subject"]) == rendered.subject


def test_subject_template_errors_name_the_setting() -> None:
    with pytest.raises(TemplateError, match=r"DIGEST_SUBJECT: .*line 1"):
        Renderer(settings(subject="{{ date "))
    with pytest.raises(TemplateError, match=r"DIGEST_SUBJECT: 'weather' is undefined; it may use"):
        Renderer(settings(subject="{{ weather }}"))


def test_an_override_directory_replaces_one_file_and_the_rest_fall_back(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "byline.html").write_text("BYLINE {{ article.source }}")

    rendered = Renderer(settings(templates_dir=tmp_path)).render(sample(), READER)
    page = soup(rendered.html)

    assert page.find("p", class_="meta", string="BYLINE Source 1") is not None
    assert [h.get_text() for h in page.find_all("h2")] == ["Ukraine energy truce", "Gaza"]
    assert page.find("td", class_="footer") is not None
    assert "BYLINE" not in rendered.text  # the text partials are still the defaults


def test_template_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "digest.html").write_text('{% extends "base.html" %}\n\n{% if %}\n')

    with pytest.raises(TemplateError) as caught:
        Renderer(settings(templates_dir=tmp_path)).render(sample(), READER)

    assert str(caught.value).startswith(f"{tmp_path / 'digest.html'}, line 3: ")


def test_template_runtime_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "theme.txt").write_text("{{ theme.label }}\n{{ theme.nope }}\n")

    with pytest.raises(TemplateError) as caught:
        Renderer(settings(templates_dir=tmp_path)).render(sample(), READER)

    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'partials' / 'theme.txt'}, line 2: ")
    assert "nope" in message


def test_a_missing_partial_names_the_file_that_includes_it(tmp_path: Path) -> None:
    (tmp_path / "digest.txt").write_text('Top\n{% include "partials/gone.txt" %}\n')

    with pytest.raises(TemplateError) as caught:
        Renderer(settings(templates_dir=tmp_path)).render(sample(), READER)

    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'digest.txt'}, line 2: template partials/gone.txt")
    assert str(tmp_path) in message.split("not found in ")[1]


def test_text_only_subscribers_get_no_html() -> None:
    reader = READER.model_copy(update={"format": MailFormat.text})

    rendered = Renderer(settings()).render(sample(), reader)

    assert rendered.html is None
    assert "Ukraine and Russia agree energy truce" in rendered.text


def test_a_quiet_day_still_renders() -> None:
    rendered = Renderer(settings()).render(edition([]), READER)

    assert "Nothing new in your feeds today." in rendered.text
    assert "Nothing new in your feeds today." in soup(rendered.html).get_text()
    assert rendered.subject == "Your morning digest, Thu 19 Mar: a quiet day"


def test_counts_read_as_english_for_one_and_for_many() -> None:
    one = edition([Theme(label="Gaza", articles=[article(3, "Gaza talks resume in Cairo")])])
    web = settings(public_url="https://digest.example.org")
    for shown, line, total in (
        (one, "1 headline in 1 theme", "All 1 headline from today"),
        (sample(), "3 headlines in 2 themes", "All 4 headlines from today"),
    ):
        rendered = Renderer(web).render(shown, READER)
        assert line in " ".join(rendered.text.split())
        assert line in soup(rendered.html).find("p", class_="meta").get_text()
        assert total in rendered.text and total in rendered.html


def test_the_glance_list_says_how_many_themes_the_caps_left_out() -> None:
    rendered = Renderer(settings(public_url="https://digest.example.org")).render(sample(), READER)
    text = " ".join(rendered.text.split())
    assert "... and 1 more theme on the web: https://digest.example.org/editions/" in text
    glance = soup(rendered.html).find("td", class_="glance").get_text(" ", strip=True)
    assert "and 1 more theme on the web" in glance
    everything = edition([Theme(label="Gaza", articles=[article(3, "Gaza talks resume")])])
    assert "more theme" not in Renderer(settings()).render(everything, READER).text
