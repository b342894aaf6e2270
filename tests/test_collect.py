"""Collection against a real HTTP server on loopback that misbehaves like the real web."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import brotli
import pytest
import sqlalchemy as sa
from alembic import command
from support import http_serving

from digest.collect import collect
from digest.collect.clean import clean_title, summarise
from digest.collect.fetch import USER_AGENT
from digest.collect.parse import parse_feed
from digest.collect.urls import canonical_url
from digest.config import Settings, load_settings
from digest.db import Database, _alembic_config, make_engine, upgrade_schema
from digest.db.feeds import FeedRepository
from digest.db.schema import feed_cache, feeds

FEEDS = Path(__file__).resolve().parent / "feeds"
NOW = datetime(2026, 3, 19, 7, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


# A loopback server whose paths each behave in their own way.


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Behaviour = Callable[["_Handler"], Reply | None]


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    status: int


@dataclass
class WebServer:
    base_url: str
    routes: dict[str, Behaviour] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0
    max_active: int = 0

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def route(self, path: str, behaviour: Behaviour) -> str:
        self.routes[path] = behaviour
        return self.url(path)

    def hits_for(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        web: WebServer = self.server.web  # type: ignore[attr-defined]
        with web.lock:
            web.active += 1
            web.max_active = max(web.max_active, web.active)
        try:
            behaviour = web.routes.get(self.path)
            reply = behaviour(self) if behaviour else Reply(404, b"not found")
            if reply is not None:
                self._send(reply)
            status = reply.status if reply else 200
            with web.lock:
                web.hits.append(Hit(self.path, dict(self.headers), status))
        finally:
            with web.lock:
                web.active -= 1

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[WebServer]:
    with http_serving(_Handler) as server:
        state = WebServer(base_url=f"http://127.0.0.1:{server.server_port}")
        server.web = state  # type: ignore[attr-defined]
        yield state


def serve(body: bytes, content_type: str = "application/rss+xml", **headers: str) -> Behaviour:
    return lambda _h: Reply(200, body, {"Content-Type": content_type, **headers})


def fixture(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def one_item_feed(title: str, link: str, date: str = "Thu, 19 Mar 2026 06:00:00 +0000") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Feed of {title}</title><item><title>{title}</title><link>{link}</link>"
        f"<pubDate>{date}</pubDate><description>About {title}.</description></item>"
        "</channel></rss>"
    ).encode()


@pytest.fixture
def store(db: Database) -> FeedRepository:
    return db.feeds


def settings(tmp_path: Path, **overrides: object) -> Settings:
    quick = {
        "database_url": f"sqlite:///{tmp_path / 'digest.db'}",
        "fetch_timeout": 2,
        "fetch_total_timeout": 4,
        "fetch_retries": 1,
        "fetch_backoff": 0.05,
    }
    return load_settings(**{**quick, **overrides})


def titles(collection) -> set[str]:
    return {a.title for a in collection.articles}


# Formats


FORMATS = {
    "rss091.xml": "Harbour & docks reopen after the storm",
    "rss092.xml": "Valley council approves new bridge",
    "rss10.rdf": "Comet visible to the naked eye this week",
    "rss20.xml": 'Exclusive: "Mayor resigns over budget row"',
    "atom03.xml": "Library extends opening hours",
    "atom10.xml": "New chip doubles battery life",
    "feed10.json": "Markets rally on rate hopes",
    "feed11.json": "Island ferry service resumes",
    "malformed.xml": "Fish & chips prices rise … again",
}


def test_every_format_is_read_with_clean_text_and_utc_times(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    urls = {name: web.route(f"/{name}", serve(fixture(name))) for name in FORMATS}

    result = collect(list(urls.values()), NOW - DAY, NOW, store, settings(tmp_path))

    reports = {f.url: f for f in result.feeds}
    for name, url in urls.items():
        assert reports[url].ok, (name, reports[url].error)
        assert reports[url].articles >= 1, name
    got = titles(result)
    assert set(FORMATS.values()) <= got
    assert "Rail strike" in " ".join(got) and "Old news from last week" not in got
    assert "Second item survives" in got, "the malformed feed's second item was lost"
    assert "A post without a title. It still becomes a headline." in got
    for article in result.articles:
        assert article.published.utcoffset() == timedelta(0)
        assert NOW - DAY < article.published <= NOW
        for text in (article.title, article.summary):
            assert "<" not in text and "&amp;" not in text and "**" not in text
            assert "alert(" not in text and "color:red" not in text and "  " not in text
    by_title = {a.title: a for a in result.articles}
    chip = by_title["New chip doubles battery life"]
    assert chip.url == "https://tech.example.org/chip"  # the alternate link, not the enclosure
    assert chip.published == datetime(2026, 3, 18, 23, 0, tzinfo=UTC)
    assert chip.summary == "The chip uses a new process."
    assert by_title["Valley council approves new bridge"].published == datetime(
        2026, 3, 18, 19, 0, tzinfo=UTC
    )
    harbour = by_title["Harbour & docks reopen after the storm"]
    assert harbour.summary == "The harbour reopened on Wednesday morning — a week after the storm."
    mayor = by_title['Exclusive: "Mayor resigns over budget row"']
    assert mayor.key == "https://planet.example.com/politics/mayor-resigns?id=7"
    assert mayor.source == "The Daily Planet"


ENCODED_TITLE = "Crème brûlée wins “Dessert of the Year” – €5 a portion"


def _encoded(declared: str, actual: str, bom: bool = False) -> bytes:
    text = (FEEDS / "encoding-template.xml").read_text(encoding="utf-8")
    text = text.replace("{encoding}", declared)
    if actual == "latin-1":  # Latin-1 has no curly quotes, dash or euro sign
        text = text.replace("“", '"').replace("”", '"').replace("–", "-").replace("€", "EUR ")
        text = text.replace("’", "'")
    data = text.encode(actual)
    return (b"\xef\xbb\xbf" if bom else b"") + data


@pytest.mark.parametrize(
    ("declared", "actual", "header", "bom"),
    [
        ("utf-8", "utf-8", "", False),
        ("utf-8", "utf-8", "", True),
        ("UTF-16", "utf-16", "", False),  # Python writes a BOM
        ("utf-16", "utf-16-le", "", False),  # no BOM
        ("windows-1252", "cp1252", "", False),
        ("ISO-8859-1", "latin-1", "", False),
        ("utf-8", "cp1252", "", False),  # declared wrongly
        ("iso-8859-1", "utf-8", "", False),  # declared wrongly the other way
        ("utf-8", "cp1252", "; charset=windows-1252", False),
    ],
)
def test_encodings_declared_rightly_or_wrongly(
    web: WebServer,
    store: FeedRepository,
    tmp_path: Path,
    declared: str,
    actual: str,
    header: str,
    bom: bool,
) -> None:
    url = web.route("/enc.xml", serve(_encoded(declared, actual, bom), "text/xml" + header))

    result = collect([url], NOW - DAY, NOW, store, settings(tmp_path))

    assert result.feeds[0].ok, result.feeds[0].error
    assert result.feeds[0].title == "Café Européen"
    [article] = result.articles
    if actual == "latin-1":
        assert article.title == 'Crème brûlée wins "Dessert of the Year" - EUR 5 a portion'
    else:
        assert article.title == ENCODED_TITLE
    assert article.summary.replace("'", "’") == "Déjà vu: the jury’s favourite, again."


# HTTP


def test_redirects_are_followed_and_bounded(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    target = web.route("/moved/feed.xml", serve(fixture("rss10.rdf")))
    start = web.route("/feed", lambda _h: Reply(301, b"", {"Location": "/moved/feed.xml"}))
    loop = web.route("/loop", lambda _h: Reply(302, b"", {"Location": "/loop"}))

    result = collect([start, loop], NOW - DAY, NOW, store, settings(tmp_path))

    reports = {f.url: f for f in result.feeds}
    assert reports[start].ok and reports[start].articles == 1
    assert web.hits_for("/moved/feed.xml") and target
    assert not reports[loop].ok and "redirects" in reports[loop].error
    assert len(web.hits_for("/loop")) <= 6


def _conditional(body: bytes, etag: str) -> Behaviour:
    def reply(handler: _Handler) -> Reply:
        if handler.headers.get("If-None-Match") == etag:
            return Reply(304, b"", {"ETag": etag})
        return Reply(200, body, {"ETag": etag, "Content-Type": "application/rss+xml"})

    return reply


def _cache_stamp(store: FeedRepository) -> datetime:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(feed_cache.c.updated_at)).scalar_one()


def test_unchanged_feed_costs_one_304_and_keeps_its_articles(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    url = web.route("/etag.xml", _conditional(fixture("rss20.xml"), '"v1"'))
    config = settings(tmp_path)

    first = collect([url], NOW - DAY, NOW, store, config)
    parsed_at = _cache_stamp(store)
    second = collect([url], NOW - DAY, NOW + timedelta(minutes=5), store, config)

    hits = web.hits_for("/etag.xml")
    assert [h.status for h in hits] == [200, 304]
    assert "If-None-Match" not in hits[0].headers and hits[1].headers["If-None-Match"] == '"v1"'
    assert not first.feeds[0].not_modified
    # The 304 carried no body: the articles come from the cache, nothing was parsed.
    assert second.feeds[0].ok and second.feeds[0].not_modified
    assert titles(second) == titles(first) and len(second.articles) == 2
    assert _cache_stamp(store) == parsed_at, "the cached entries were replaced by a new parse"
    assert second.feeds[0].title == "The Daily Planet"
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(feeds.c.etag)).scalar_one() == '"v1"'


def test_last_modified_is_sent_back(web: WebServer, store: FeedRepository, tmp_path: Path) -> None:
    stamp = "Thu, 19 Mar 2026 06:00:00 GMT"

    def reply(handler: _Handler) -> Reply:
        if handler.headers.get("If-Modified-Since") == stamp:
            return Reply(304)
        return Reply(200, fixture("atom10.xml"), {"Last-Modified": stamp})

    url = web.route("/lm.xml", reply)
    collect([url], NOW - DAY, NOW, store, settings(tmp_path))
    again = collect([url], NOW - DAY, NOW, store, settings(tmp_path))

    assert [h.status for h in web.hits_for("/lm.xml")] == [200, 304]
    assert again.feeds[0].not_modified and again.feeds[0].articles == 2


def test_slow_feed_times_out_without_holding_up_the_others(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    def drip(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        try:
            for _ in range(40):  # a byte every 0.1 s: never idle long enough for a read timeout
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    slow = web.route("/slow.xml", drip)
    good = web.route("/good.xml", serve(fixture("rss10.rdf")))
    config = settings(tmp_path, fetch_timeout=1, fetch_total_timeout=1.5, fetch_retries=0)

    began = time.perf_counter()
    result = collect([slow, good], NOW - DAY, NOW, store, config)
    elapsed = time.perf_counter() - began

    reports = {f.url: f for f in result.feeds}
    assert not reports[slow].ok and "timed out" in reports[slow].error
    assert "DIGEST_FETCH_TOTAL_TIMEOUT" in reports[slow].error
    assert reports[good].ok and reports[good].articles == 1
    assert elapsed < 3.5


def test_a_50_mb_feed_is_cut_off_while_streaming(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    sent = []

    def huge(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.end_headers()  # no Content-Length: the size is only known by reading
        chunk = b"<item><title>x</title></item>" * 2000
        total = 0
        try:
            handler.wfile.write(b"<rss><channel>")
            while total < 50_000_000:
                handler.wfile.write(chunk)
                total += len(chunk)
        except OSError:
            pass
        sent.append(total)
        handler.close_connection = True

    url = web.route("/huge.xml", huge)
    config = settings(tmp_path, max_feed_bytes=2_000_000)

    result = collect([url], NOW - DAY, NOW, store, config)

    report = result.feeds[0]
    assert not report.ok
    assert "larger than 2000000 bytes" in report.error and "DIGEST_MAX_FEED_BYTES" in report.error
    time.sleep(0.2)
    assert sent and sent[0] < 50_000_000, "the client read the whole 50 MB"


def test_declared_oversize_is_refused_before_reading(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    url = web.route("/big.xml", serve(b"x" * 3000))
    result = collect([url], NOW - DAY, NOW, store, settings(tmp_path, max_feed_bytes=2048))
    assert "larger than 2048 bytes" in result.feeds[0].error


def _sequence(*replies: Reply) -> Behaviour:
    queue = list(replies)
    return lambda _h: queue.pop(0) if len(queue) > 1 else queue[0]


def test_5xx_is_retried_with_backoff(web: WebServer, store: FeedRepository, tmp_path: Path) -> None:
    flaky = web.route(
        "/flaky.xml",
        _sequence(Reply(503), Reply(500), Reply(200, fixture("rss10.rdf"))),
    )
    down = web.route("/down.xml", _sequence(Reply(502)))
    config = settings(tmp_path, fetch_retries=2)

    result = collect([flaky, down], NOW - DAY, NOW, store, config)

    reports = {f.url: f for f in result.feeds}
    assert reports[flaky].ok and reports[flaky].articles == 1
    assert [h.status for h in web.hits_for("/flaky.xml")] == [503, 500, 200]
    assert not reports[down].ok and "HTTP 502" in reports[down].error
    assert "3 attempts" in reports[down].error
    assert len(web.hits_for("/down.xml")) == 3


def test_429_retry_after_is_respected(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    busy = web.route(
        "/busy.xml",
        _sequence(Reply(429, b"", {"Retry-After": "1"}), Reply(200, fixture("rss10.rdf"))),
    )
    later = web.route("/later.xml", _sequence(Reply(429, b"", {"Retry-After": "3600"})))
    config = settings(tmp_path, fetch_retries=2, fetch_max_retry_after=10)

    result = collect([busy, later], NOW - DAY, NOW, store, config)

    reports = {f.url: f for f in result.feeds}
    assert reports[busy].ok
    hits = web.hits_for("/busy.xml")
    assert [h.status for h in hits] == [429, 200]
    assert not reports[later].ok and "3600s" in reports[later].error
    assert "DIGEST_FETCH_MAX_RETRY_AFTER" in reports[later].error
    assert len(web.hits_for("/later.xml")) == 1, "asked to wait an hour, it must not retry"
    assert reports[busy].seconds >= 1.0


def _compressed(body: bytes) -> Behaviour:
    def reply(handler: _Handler) -> Reply:
        accepted = handler.headers.get("Accept-Encoding", "")
        if handler.path.startswith("/br") and "br" in accepted:
            return Reply(200, brotli.compress(body), {"Content-Encoding": "br"})
        if handler.path.startswith("/gz") and "gzip" in accepted:
            return Reply(200, gzip.compress(body), {"Content-Encoding": "gzip"})
        return Reply(406, b"compression expected")

    return reply


def test_gzip_brotli_and_a_clear_user_agent(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    urls = [
        web.route("/br.xml", _compressed(fixture("atom10.xml"))),
        web.route("/gz.xml", _compressed(fixture("rss10.rdf"))),
    ]

    result = collect(urls, NOW - DAY, NOW, store, settings(tmp_path))

    assert all(f.ok for f in result.feeds), [f.error for f in result.feeds]
    assert len(result.articles) == 3
    for hit in web.hits:
        assert hit.headers["User-Agent"] == USER_AGENT and "digest/" in USER_AGENT


def test_per_host_concurrency_is_limited(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    def slowly(handler: _Handler) -> Reply:
        time.sleep(0.2)
        n = handler.path.strip("/")
        return Reply(200, one_item_feed(f"Story {n}", f"https://ex.com/{n}"))

    urls = [web.route(f"/{n}", slowly) for n in range(6)]
    config = settings(tmp_path, fetch_per_host=2, fetch_concurrency=16)

    result = collect(urls, NOW - DAY, NOW, store, config)

    assert len(result.articles) == 6
    assert web.max_active == 2


# Safety


@pytest.mark.parametrize("name", ["bomb.xml", "xxe.xml"])
def test_entity_bombs_and_external_entities_are_refused(
    web: WebServer, store: FeedRepository, tmp_path: Path, name: str
) -> None:
    url = web.route(f"/{name}", serve(fixture(name)))
    good = web.route("/good.xml", serve(fixture("rss10.rdf")))

    began = time.perf_counter()
    result = collect([url, good], NOW - DAY, NOW, store, settings(tmp_path))

    reports = {f.url: f for f in result.feeds}
    assert not reports[url].ok and "entities" in reports[url].error
    assert reports[good].ok
    assert time.perf_counter() - began < 5
    assert all("root:" not in a.title for a in result.articles)


def test_file_sources_only_by_explicit_path(store: FeedRepository, tmp_path: Path) -> None:
    path = str(FEEDS / "rss10.rdf")
    sources = [path, f"file://{path}", "ftp://example.com/feed.xml", "gopher:feed"]

    result = collect(sources, NOW - DAY, NOW, store, settings(tmp_path))

    reports = {f.url: f for f in result.feeds}
    assert reports[path].ok and reports[f"file://{path}"].ok
    assert len(result.articles) == 1  # the same article once
    for bad in sources[2:]:
        assert not reports[bad].ok and "use an http(s) URL or a file path" in reports[bad].error


def test_a_page_that_is_not_a_feed_is_reported(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    html = web.route("/page", serve(b"<html><body><p>Hello</p></body></html>", "text/html"))
    junk = web.route("/junk", serve(b"\x00\x01\x02 not xml at all", "text/plain"))
    bad_json = web.route("/bad.json", serve(b'{"items": 3}', "application/json"))

    result = collect([html, junk, bad_json], NOW - DAY, NOW, store, settings(tmp_path))

    errors = {f.url: f.error for f in result.feeds}
    assert "not a feed: the document is <html>" in errors[html]
    assert "not readable" in errors[junk]
    assert "not a feed" in errors[bad_json] and "'items' list" in errors[bad_json]


# Times and identity


def test_undated_items_appear_in_exactly_one_edition(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    url = web.route("/undated.xml", serve(fixture("undated.xml")))
    config = settings(tmp_path)
    undated = {"A note without a date", "A note from the future", "A note with a garbled date"}

    day_one = collect([url], NOW - DAY, NOW, store, config)
    day_two = collect([url], NOW, NOW + DAY, store, config)

    assert titles(day_one) == undated
    assert all(not a.dated and a.published == NOW for a in day_one.articles)
    assert titles(day_two) == set()
    assert day_two.feeds[0].ok


def test_since_overrides_the_window_start(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    url = web.route("/rss20.xml", serve(fixture("rss20.xml")))
    since = datetime(2026, 3, 10, tzinfo=UTC)

    result = collect([url], since, NOW, store, settings(tmp_path))

    assert "Old news from last week" in titles(result)


def test_one_article_once_across_feeds(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    a = web.route(
        "/a.xml",
        serve(one_item_feed("Bridge opens", "https://News.Example.com/bridge?utm_source=a#top")),
    )
    b = web.route(
        "/b.xml",
        serve(
            one_item_feed(
                "Bridge opens to traffic",
                "https://news.example.com/bridge?fbclid=xyz&amp;gclid=1",
                "Thu, 19 Mar 2026 05:00:00 +0000",
            )
        ),
    )
    c = web.route("/c.xml", serve(fixture("atom10.xml")))
    d = web.route(
        "/d.xml",
        serve(
            b'<feed xmlns="http://www.w3.org/2005/Atom"><title>Mirror</title><entry>'
            b"<title>New chip doubles battery life</title>"
            b'<link href="https://mirror.example.com/chip-story"/>'
            b"<id>urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66</id>"
            b"<updated>2026-03-19T03:00:00Z</updated></entry></feed>"
        ),
    )

    result = collect([a, b, c, d], NOW - DAY, NOW, store, settings(tmp_path))

    bridges = [x for x in result.articles if "bridge" in x.key]
    assert len(bridges) == 1
    assert bridges[0].key == "https://news.example.com/bridge"
    assert bridges[0].title == "Bridge opens to traffic"  # the earlier report is kept
    chips = [x for x in result.articles if "chip" in x.title]
    assert len(chips) == 1, "one GUID, two links: still one article"


# Feed health


def test_feed_health_is_remembered_and_dead_feeds_reported(
    web: WebServer, store: FeedRepository, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = web.route("/gone.xml", lambda _h: Reply(404, b"gone"))
    good = web.route("/good.xml", serve(fixture("rss10.rdf")))
    config = settings(tmp_path, feed_dead_after=2)

    first = collect([gone, good], NOW - DAY, NOW, store, config)
    second = collect([gone, good], NOW - DAY, NOW, store, config)

    before = {f.url: f for f in first.feeds}
    after = {f.url: f for f in second.feeds}
    assert not before[gone].dead and before[gone].failures == 1
    assert after[gone].dead and after[gone].failures == 2 and "HTTP 404" in after[gone].error
    assert after[good].ok and after[good].articles == 1
    assert f"feed dead: {gone}" in caplog.text
    rows = {r.url: r for r in store.health(include_unlisted=True)}
    assert rows[gone].consecutive_failures == 2 and "404" in rows[gone].last_error
    assert rows[gone].last_success is None
    assert rows[good].consecutive_failures == 0 and rows[good].last_error is None
    assert rows[good].last_success is not None and rows[good].title == "Science Notes"


def test_many_feeds_parse_in_worker_processes(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    urls = [
        web.route(f"/many/{n}.xml", serve(one_item_feed(f"Story {n}", f"https://ex.com/{n}")))
        for n in range(40)
    ]
    config = settings(tmp_path, parse_workers=2)

    result = collect(urls, NOW - DAY, NOW, store, config)

    assert all(f.ok for f in result.feeds)
    assert titles(result) == {f"Story {n}" for n in range(40)}


# Text cleaning and URLs


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("**Breaking** news", "Breaking news"),
        ("__Big__ day", "Big day"),
        ('"Quoted headline"', "Quoted headline"),
        ("“Curly quoted”", "Curly quoted"),
        ("Tags <b>inside</b>  and   spaces", "Tags inside and spaces"),
        ("&amp;quot;Double&amp;quot; escaped &amp;amp; more", '"Double" escaped & more'),
        ("&lt;i&gt;Escaped&lt;/i&gt; tags", "Escaped tags"),
        ("Caf&eacute; &#8211; open", "Café – open"),
        ("BREAKING Migration pact: EU agrees", "Migration pact: EU agrees"),
        ("UPDATE: Talks resume", "Talks resume"),
        ("EXCLUSIVE – Minister quits", "Minister quits"),
        ("Live music returns to the square", "Live music returns to the square"),
        ("BREAKING", "BREAKING"),
    ],
)
def test_clean_title(raw: str, clean: str) -> None:
    assert clean_title(raw) == clean


def test_summary_is_cut_at_a_sentence_or_word() -> None:
    text = "<p>" + "First sentence is here. " * 3 + "<script>evil()</script>Then more words " * 30
    summary = summarise(text, 100)
    assert len(summary) <= 101 and "evil" not in summary and "<" not in summary
    assert summary.endswith(".") or summary.endswith("…")
    words = summarise("word " * 100, 50)
    assert words.endswith("…") and len(words) <= 51 and "wor…" not in words


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://Example.COM/a?utm_source=x&b=2#frag", "https://example.com/a?b=2"),
        ("http://example.com:80/a?fbclid=1&gclid=2", "http://example.com/a"),
        ("https://example.com", "https://example.com/"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_cached_entries_survive_json_round_trip(
    web: WebServer, store: FeedRepository, tmp_path: Path
) -> None:
    url = web.route("/j.xml", _conditional(fixture("feed11.json"), 'W/"j"'))
    collect([url], NOW - DAY, NOW, store, settings(tmp_path))
    cached = store.cached(url)
    assert cached is not None
    title, payload = cached
    assert title == "JSON Times" and len(json.loads(payload)) == 2


def test_an_existing_database_gains_the_feed_cache_on_upgrade(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001")
        conn.execute(
            feeds.insert().values(url="https://kept.example.com/rss", added_at=NOW, title="Kept")
        )
    assert "feed_cache" not in sa.inspect(engine).get_table_names()

    upgrade_schema(engine)

    assert "feed_cache" in sa.inspect(engine).get_table_names()
    old = Database(f"sqlite:///{tmp_path / 'old.db'}")
    assert old.feeds.urls() == ["https://kept.example.com/rss"]
    old.close()
    engine.dispose()


# Real feeds, against the reference another parser produced for them


def test_real_feeds_parse_as_their_reference_says() -> None:
    """Every entry of the shared real feeds, with the link and date the reference gives."""
    directory = next(
        (p / "shared/data/real-feeds" for p in FEEDS.parents if (p / "shared/data").is_dir()),
        None,
    )
    if directory is None:
        pytest.skip("the shared real feeds (../shared/data/real-feeds) are not on this machine")
    for expected_file in sorted(directory.glob("*.json")):
        name = expected_file.name.removesuffix(".expected.json").removesuffix(".json")
        source = directory / f"{name}.xml"
        if expected_file.name.endswith(".expected.json"):
            source = directory / f"{name}.json"
        elif not source.exists():
            continue
        expected = json.loads(expected_file.read_text())["entries"]
        parsed = parse_feed(source.read_bytes(), "https://example.net/feed", 300)
        assert [e.url for e in parsed.entries] == [e["link"] for e in expected], name
        for entry, want in zip(parsed.entries, expected, strict=True):
            stamp = want.get("published") or want.get("updated")
            assert entry.published == datetime.fromisoformat(stamp), name
