"""`digest serve` over real HTTP: one-click unsubscribe, bad links, the preferences page."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from support import (
    CHROMIUM_ARGS,
    SAMPLE_FEEDS,
    SAMPLE_NOW,
    MailSink,
    digest_env,
    free_port,
    invoke,
    run_digest,
)
from webserve import SECRET, Served, chromium_path, serving

from digest.db import Database, _alembic_config, make_engine, upgrade_schema
from digest.models import Subscriber
from digest.subscribers import import_csv
from digest.tokens import make_token


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    feeds = ",".join(str(p) for p in sorted(SAMPLE_FEEDS.glob("*.xml")))
    env = digest_env(tmp_path, DIGEST_FEEDS=feeds)
    store = Database(env["DIGEST_DATABASE_URL"])
    for address in ("ann@example.com", "bob@example.com"):
        store.subscribers.add(Subscriber(email=address))
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
    sent = invoke(["run", "--now", SAMPLE_NOW], env, served.cwd)
    assert sent.returncode == 0, sent.stderr
    recipients = [rcpt for rcpts, _ in smtp_sink.envelopes for rcpt in rcpts]
    assert recipients == ["bob@example.com"]


def _bad_tokens(served: Served) -> dict[str, str | None]:
    ann, bob = served.subscriber("ann@example.com"), served.subscriber("bob@example.com")
    good = make_token(SECRET, ann.public_id)
    id_part, signature = good.split(".")
    flipped = signature[:-3] + ("A" if signature[-3] != "A" else "B") + signature[-2:]
    # 32 bytes are 43 base64 characters; the last carries 2 unused bits, so a neighbour
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
    preview = invoke(
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
    shown = invoke(
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


def _old_style_token(email: str) -> str:
    """A link as sent before opaque ids: base64 of the address, signed (kept working)."""
    encoded = base64.urlsafe_b64encode(email.encode()).rstrip(b"=").decode()
    mac = hmac.new(SECRET.encode(), f"subscriber|{email}".encode(), hashlib.sha256).digest()
    return f"{encoded}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def test_a_token_sent_before_opaque_ids_still_unsubscribes_but_not_when_respelled(
    served: Served,
) -> None:
    old = _old_style_token("bob@example.com")
    head, signature = old.split(".")
    with httpx.Client(base_url=served.base_url) as client:
        for respelled in (f"{head}=.{signature}", f"{head}.{signature}=", f"{head}.x{signature}"):
            refused = client.post("/unsubscribe", params={"token": respelled})
            assert refused.status_code == 400, respelled
        assert served.status("bob@example.com") == "active"

        page = client.get("/unsubscribe", params={"token": old})
        assert page.status_code == 200 and "bob@example.com" in page.text
        done = client.post(
            "/unsubscribe", params={"token": old}, content="List-Unsubscribe=One-Click"
        )

    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert served.status("bob@example.com") == "unsubscribed"


def test_a_link_keeps_working_after_the_address_changes(served: Served) -> None:
    link = served.link("ann@example.com", "preferences")
    store = served.store()
    try:
        with store.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE subscribers SET email = 'ann.new@example.org' WHERE email = :e"),
                {"e": "ann@example.com"},
            )
    finally:
        store.close()

    page = httpx.get(link)

    assert page.status_code == 200 and "ann.new@example.org" in page.text
    saved = httpx.post(link, data={"format": "text", "timezone": "UTC"})
    assert saved.status_code == 303
    assert served.subscriber("ann.new@example.org").format.value == "text"


def test_redirects_go_only_to_the_public_url_and_token_pages_are_never_cached(
    served: Served,
) -> None:
    link = urlsplit(served.link("ann@example.com", "preferences"))
    evil = {"Host": "evil.example"}
    with httpx.Client(base_url=served.base_url) as client:
        slash = client.get(f"/preferences/?{link.query}", headers=evil)
        assert slash.status_code == 307
        assert slash.headers["location"] == f"{served.base_url}/preferences?{link.query}"
        posted = client.post(f"/preferences?{link.query}", data={"format": "html"}, headers=evil)
        assert posted.status_code == 303
        assert posted.headers["location"].startswith(f"{served.base_url}/preferences?token=")
        for response in (
            client.get(f"/preferences?{link.query}"),
            client.get(f"/unsubscribe?{link.query}"),
            client.post(f"/resubscribe?{link.query}"),
            client.get("/unsubscribe?token=forged.token"),
            slash,
            posted,
        ):
            where = (response.request.method, response.request.url.path, response.status_code)
            assert response.headers["cache-control"] == "no-store", where
            assert response.headers["referrer-policy"] == "no-referrer", where
            assert response.headers["x-content-type-options"] == "nosniff", where
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"], where


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Factory", "Mars/Base", "EST"])
def test_the_preferences_form_accepts_only_the_zones_it_lists(served: Served, zone: str) -> None:
    link = served.link("bob@example.com", "preferences")
    before = served.export()
    listed = httpx.get(link).text

    refused = httpx.post(link, data={"timezone": zone, "format": "html"})

    assert f"<option>{zone}</option>" not in listed
    assert refused.status_code == 400 and "is not one of the listed zones" in refused.text
    assert served.export() == before


def test_pausing_skips_the_subscriber_until_they_resume(
    served: Served, smtp_sink: MailSink
) -> None:
    link = served.link("ann@example.com", "preferences")
    paused = httpx.post(link, data={"pause": "7", "format": "html"}, follow_redirects=True)
    assert paused.status_code == 200 and "Paused until" in paused.text
    until = served.subscriber("ann@example.com").paused_until
    assert until is not None and 6.9 < (until - datetime.now(UTC)).total_seconds() / 86400 <= 7

    env = {**served.env, **smtp_sink.env()}
    first = invoke(["run", "--now", SAMPLE_NOW], env, served.cwd)
    assert first.returncode == 0, first.stderr
    assert [r for rcpts, _ in smtp_sink.envelopes for r in rcpts] == ["bob@example.com"]

    resumed = httpx.post(link, data={"pause": "0", "format": "html"}, follow_redirects=True)
    assert "Paused until" not in resumed.text
    assert served.subscriber("ann@example.com").paused_until is None
    # Resumed, she gets today's edition on the next run; bob already has it.
    later = invoke(["run", "--now", SAMPLE_NOW], env, served.cwd)
    assert later.returncode == 0, later.stderr
    assert [r for rcpts, _ in smtp_sink.envelopes[1:] for r in rcpts] == ["ann@example.com"]


def test_a_formula_planted_through_the_form_is_exported_inert_and_imported_exact(
    served: Served, tmp_path: Path
) -> None:
    planted, sum_ = '=HYPERLINK("http://evil.example")', "-2+3"
    link = served.link("ann@example.com", "preferences")
    saved = httpx.post(
        link, data={"topics_include": planted, "topics_exclude": sum_, "format": "html"}
    )
    assert saved.status_code == 303

    exported = served.export()
    rows = list(csv.DictReader(io.StringIO(exported)))
    cells = [cell for row in rows for cell in row.values() if cell]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    ann = next(row for row in rows if row["email"] == "ann@example.com")
    assert (ann["topics_include"], ann["topics_exclude"]) == (f"'{planted}", f"'{sum_}")

    empty = Database(f"sqlite:///{tmp_path / 'copy.db'}")
    try:
        plan, counts = import_csv(empty.subscribers, io.StringIO(exported))
        assert not plan.bad and counts is not None and counts.added == 2
        copy = empty.subscribers.get("ann@example.com")
    finally:
        empty.close()
    assert copy is not None and (copy.topics_include, copy.topics_exclude) == ([planted], [sum_])


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_upgrading_gives_every_existing_subscriber_their_own_opaque_id(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'old.db'}"
        if database == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = make_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0002")
        for address in ("ann@example.com", "bob@example.com"):
            conn.execute(
                sa.text(
                    "INSERT INTO subscribers (email, created_at, updated_at) "
                    "VALUES (:e, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"e": address},
            )

    upgrade_schema(engine)
    engine.dispose()

    store = Database(url)
    try:
        ids = [s.public_id for s in store.subscribers.iter()]
        added = store.subscribers.add(Subscriber(email="cy@example.com"))
        assert store.subscribers.by_public_id(added.public_id) == added
    finally:
        store.close()
    assert len(set(ids)) == 2 and all(len(i) >= 22 and "@" not in i for i in ids)
    assert added.public_id not in ids
