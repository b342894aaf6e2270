"""`digest serve` over real HTTP: one-click unsubscribe, bad links, the preferences page."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from conftest import SAMPLE_FEEDS, SAMPLE_NOW, MailSink, digest_env, free_port, run_digest
from webserve import CHROMIUM_ARGS, SECRET, Served, chromium_path, serving

from digest.models import Subscriber
from digest.store import Store
from digest.tokens import make_token


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    feeds = ",".join(str(p) for p in sorted(SAMPLE_FEEDS.glob("*.xml")))
    env = digest_env(tmp_path, DIGEST_FEEDS=feeds)
    store = Store(env["DIGEST_DATABASE_URL"])
    for address in ("ann@example.com", "bob@example.com"):
        store.add_subscriber(Subscriber(email=address))
    store.close()
    with serving(tmp_path, env) as running:
        yield running


def test_one_click_post_unsubscribes_and_the_next_run_skips_them(
    served: Served, smtp_sink: MailSink
) -> None:
    link = served.link("ann@example.com")

    page = httpx.get(link)

    assert page.status_code == 200 and "ann@example.com" in page.text
    assert '<form method="post">' in page.text and "<button" in page.text
    assert served.status("ann@example.com") == "active"  # looking is not unsubscribing
    assert page.headers["referrer-policy"] == "no-referrer"

    # Exactly what Gmail and Yahoo send (RFC 8058 section 3.2).
    clicked = httpx.post(
        link,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert clicked.status_code == 200 and "unsubscribed" in clicked.text
    assert served.status("ann@example.com") == "unsubscribed"
    before = served.export()
    for _ in range(2):
        again = httpx.post(link, data={"List-Unsubscribe": "One-Click"})
        assert again.status_code == 200
    assert served.export() == before  # harmless: not even the changed time moves
    assert "Already unsubscribed" in httpx.get(link).text

    env = {**served.env, **smtp_sink.env()}
    sent = run_digest(["run", "--now", SAMPLE_NOW], env, served.cwd)
    assert sent.returncode == 0, sent.stderr
    recipients = [rcpt for rcpts, _ in smtp_sink.envelopes for rcpt in rcpts]
    assert recipients == ["bob@example.com"]


def _bad_tokens(served: Served) -> dict[str, str | None]:
    ann, bob = served.subscriber("ann@example.com"), served.subscriber("bob@example.com")
    good = make_token(SECRET, ann.public_id)
    id_part, signature = good.split(".")
    flipped = signature[:-3] + ("A" if signature[-3] != "A" else "B") + signature[-2:]
    # 32 bytes are 43 base64 characters; the last carries 4 unused bits, so a neighbour
    # character decodes to the same bytes: only a comparison of the text refuses it.
    last = signature[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bytes = alphabet[alphabet.index(last) ^ 1]
    return {
        "forged with another key": make_token("some-other-key", ann.public_id),
        "signature altered": f"{id_part}.{flipped}",
        "subscriber altered": f"{bob.public_id}.{signature}",
        "last character changed, same bytes": f"{id_part}.{signature[:-1]}{same_bytes}",
        "junk characters inserted": f"{id_part}.{signature[:10]}!*{signature[10:]}",
        "padding added": f"{id_part}.{signature}=",
        "truncated": good[:-6],
        "signature missing": id_part,
        "extra part": good + ".x",
        "not base64": "%%%.###",
        "not ascii": "ann\u00e9.sig\u00e9",
        "empty": "",
        "absent": None,
    }


def test_forged_tampered_and_truncated_tokens_get_400_and_change_nothing(
    served: Served,
) -> None:
    before = served.export()

    with httpx.Client(base_url=served.base_url) as client:
        for kind, token in _bad_tokens(served).items():
            params = {} if token is None else {"token": token}
            responses = [
                client.get("/unsubscribe", params=params),
                client.post(
                    "/unsubscribe",
                    params=params,
                    content="List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                ),
                client.get("/preferences", params=params),
                client.post("/preferences", params=params, data={"format": "text"}),
            ]
            for response in responses:
                where = (kind, response.request.method, response.request.url.path)
                assert response.status_code == 400, (*where, response.text)
                assert "This link does not work" in response.text, where
                assert "Nothing was changed" in response.text, where

    assert served.export() == before


def test_preferences_page_in_chromium_saves_a_change_the_next_preview_reflects(
    served: Served,
) -> None:
    from playwright import sync_api

    chromium = chromium_path()
    link = served.link("ann@example.com", "preferences")

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(link)
            assert "ann@example.com" in page.inner_text("main")
            page.fill("#topics_include", "Storm Edda")
            page.fill("#topics_exclude", "rail")
            page.select_option("#delivery_hour", "7")
            page.select_option("#timezone", "Asia/Tokyo")
            page.check("#format-text")
            page.click("button[type=submit]")
            page.wait_for_selector("text=Saved.")
            # The saved form shows the saved values, and the URL carries no form data.
            assert page.input_value("#topics_include") == "Storm Edda"
            assert page.input_value("#delivery_hour") == "7"
            assert page.input_value("#timezone") == "Asia/Tokyo"
            assert page.is_checked("#format-text")
            assert urlsplit(page.url).path == "/preferences"
        finally:
            browser.close()

    ann = served.subscriber("ann@example.com")
    assert (ann.topics_include, ann.topics_exclude) == (["Storm Edda"], ["rail"])
    assert (ann.delivery_hour, ann.timezone, ann.format.value) == (7, "Asia/Tokyo", "text")

    out = served.cwd / "ann-preview"
    preview = run_digest(
        ["preview", "--subscriber", "ann@example.com", "--now", SAMPLE_NOW, "--out", str(out)],
        served.env,
        served.cwd,
    )

    assert preview.returncode == 0, preview.stderr
    assert not (out / "digest.html").exists()  # text only, as chosen
    text = (out / "digest.txt").read_text()
    assert "Storm Edda" in text
    assert "Gaza" not in text and "Migration" not in text and "rail lines" not in text
    message = message_from_bytes((out / "digest.eml").read_bytes(), policy=policy.default)
    assert message.get_content_type() == "text/plain"
    assert message["To"].addresses[0].addr_spec == "ann@example.com"

    # The same view as JSON: only her themes, and the text shows their times in Tokyo.
    shown = run_digest(
        ["preview", "--subscriber", "ann@example.com", "--now", SAMPLE_NOW, "--format", "json"],
        served.env,
        served.cwd,
    )
    articles = [a for t in json.loads(shown.stdout)["themes"] for a in t["articles"]]
    assert articles and all("Storm Edda" in a["title"] for a in articles)
    tokyo = ZoneInfo("Asia/Tokyo")
    for article in articles:
        local = datetime.fromisoformat(article["published"]).astimezone(tokyo)
        assert local.strftime("%H:%M") in text, (article["title"], local)


def test_a_refused_preference_change_says_why_and_stores_nothing(served: Served) -> None:
    link = served.link("bob@example.com", "preferences")
    before = served.export()

    response = httpx.post(
        link,
        data={"topics_include": "x", "delivery_hour": "25", "timezone": "UTC", "format": "html"},
    )

    assert response.status_code == 400
    assert "Not saved: delivery hour 25 is not from 0 to 23" in response.text
    assert 'value="x"' in response.text  # what they typed is kept
    assert served.export() == before


def test_hostile_values_are_shown_escaped(served: Served) -> None:
    link = served.link("bob@example.com", "preferences")
    hostile = '"><script>alert(1)</script>'

    saved = httpx.post(
        link, data={"topics_include": hostile, "format": "html"}, follow_redirects=True
    )

    assert saved.status_code == 200 and "Saved." in saved.text
    assert "<script>alert(1)</script>" not in saved.text
    assert "&lt;script&gt;" in saved.text
    assert "script-src" not in saved.headers["content-security-policy"]  # no scripts at all


def test_serve_refuses_to_start_without_a_key_or_on_a_busy_port(tmp_path: Path) -> None:
    no_key = digest_env(tmp_path, DIGEST_SECRET_KEY="")
    refused = run_digest(["serve", "--port", str(free_port())], no_key, tmp_path, timeout=30)
    assert refused.returncode == 2
    assert "DIGEST_SECRET_KEY is not set" in refused.stderr and "Traceback" not in refused.stderr

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run_digest(
            ["serve", "--port", str(port)], digest_env(tmp_path), tmp_path, timeout=30
        )
    assert taken.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr and "--port" in taken.stderr
    assert "Traceback" not in taken.stderr


def test_healthz_answers_for_container_health_checks(served: Served) -> None:
    response = httpx.get(served.base_url + "/healthz")
    assert response.status_code == 200 and response.text == "ok\n"
