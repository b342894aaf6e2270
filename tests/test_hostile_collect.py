"""Hostile feeds against collection: bombs, floods, redirects inside, hidden entities.

Every feed is served by a real HTTP server on 127.0.0.1; `digest feeds check` runs
as a child process where its memory is what is measured.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import brotli
import pytest
from support import digest_env, http_serving

from digest.collect import collect, netguard
from digest.config import Settings, load_settings
from digest.db import Database

NOW = datetime(2026, 3, 19, 7, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
GIB = 1 << 30
# A public address (example.com's), played by the loopback server in these tests.
PUBLIC_IP = "93.184.215.14"


@dataclass
class Site:
    """A loopback HTTP server whose paths answer (status, headers, body)."""

    port: int
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def add(self, path: str, body: bytes, status: int = 200, **headers: str) -> str:
        headers.setdefault("Content-Type", "application/rss+xml")
        self.routes[path] = (status, {k.replace("_", "-"): v for k, v in headers.items()}, body)
        return self.url(path)


def _serve() -> Iterator[Site]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            site.hits.append(self.path)
            status, headers, body = site.routes.get(self.path, (404, {}, b"not found"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with http_serving(Handler) as server:
        site = Site(port=server.server_port)
        yield site


@pytest.fixture
def web() -> Iterator[Site]:
    yield from _serve()


@pytest.fixture
def inside() -> Iterator[Site]:
    """A second server standing for an internal service nobody outside may reach."""
    yield from _serve()


def feed(
    title: str,
    items: int = 1,
    body: str = "",
    link: bool = True,
    site: str = "",
    item_title: str = "",
) -> bytes:
    rows = "".join(
        f"<item><title><![CDATA[{item_title or title} {i}]]></title>"
        + (f"<link>https://news.example.com/{title.replace(' ', '-')}/{i}</link>" if link else "")
        + "<pubDate>Thu, 19 Mar 2026 06:00:00 +0000</pubDate>"
        + f"<description><![CDATA[{body}]]></description>"
        "</item>"
        for i in range(items)
    )
    channel_link = f"<link>{site}</link>" if site else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
        f"{channel_link}{rows}</channel></rss>"
    ).encode()


def settings(tmp_path: Path, **overrides: object) -> Settings:
    quick = {
        "database_url": f"sqlite:///{tmp_path / 'digest.db'}",
        "fetch_timeout": 3,
        "fetch_total_timeout": 10,
        "fetch_retries": 0,
    }
    return load_settings(**{**quick, **overrides})


def collect_now(urls: list[str], tmp_path: Path, **overrides: object):
    db = Database(f"sqlite:///{tmp_path / 'digest.db'}")
    try:
        return collect(urls, NOW - DAY, NOW, db.feeds, settings(tmp_path, **overrides))
    finally:
        db.close()


# 1. Decompression bombs

# Runs argv[1:] as a child and prints its own peak memory (KiB) last on stderr.
_PEAK_OF = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(f"peak-kib {usage.ru_maxrss}", file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    zero = bytes(1 << 20)
    squeeze = brotli.Compressor(quality=5)
    br = b"".join(squeeze.process(zero) for _ in range(GIB // len(zero))) + squeeze.finish()
    # 1 GiB of zeros as gzip members one after another, then gzipped again.
    member = gzip.compress(zero, compresslevel=9)
    gzgz = gzip.compress(member * (GIB // len(zero)), compresslevel=9)
    return {"br": br, "gzip, gzip": gzgz}


def test_compression_bombs_are_cut_and_memory_stays_bounded(
    web: Site, tmp_path: Path, bombs: dict[str, bytes]
) -> None:
    assert len(bombs["br"]) < 2000 and len(bombs["gzip, gzip"]) < 20000
    br = web.add("/br.xml", bombs["br"], Content_Encoding="br")
    gzgz = web.add("/gzgz.xml", bombs["gzip, gzip"], Content_Encoding="gzip, gzip")
    triple = gzip.compress(gzip.compress(gzip.compress(feed("Triple"))))
    stacked = web.add("/triple.xml", triple, Content_Encoding="gzip, gzip, gzip")
    good = web.add("/good.xml", gzip.compress(feed("Harbour reopens")), Content_Encoding="gzip")
    env = digest_env(tmp_path, DIGEST_FEEDS=",".join([br, gzgz, stacked, good]))

    with open(tmp_path / "out", "w") as out_file, open(tmp_path / "err", "w") as err_file:
        # Linux keeps a process's peak memory across exec, so a child forked straight from
        # this (large) test process would report the test's own size: a small launcher
        # forks `digest feeds check` and reports that child's own peak.
        launcher = subprocess.run(
            [sys.executable, "-c", _PEAK_OF, sys.executable, "-m", "digest", "feeds", "check"],
            env=env,
            cwd=tmp_path,
            stdout=out_file,
            stderr=err_file,
            check=False,
        )
    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    peak_line = err.rstrip().rsplit("\n", 1)[-1]

    assert launcher.returncode == 3, err
    assert "Traceback" not in out + err
    peak_mb = int(peak_line.removeprefix("peak-kib ")) / 1024
    assert peak_mb < 400, f"peak memory {peak_mb:.0f} MB"
    lines = out.splitlines()
    for url in (br, gzgz):
        error = lines[lines.index(next(ln for ln in lines if ln.endswith(url))) + 1]
        assert "larger than 10000000 bytes once decompressed" in error
    assert "3 stacked Content-Encodings" in out
    assert any(ln.startswith("ok") and ln.endswith(good) for ln in lines)


# 2. A parse that would take minutes fails alone, within its budget


def test_comment_flood_is_read_within_the_parse_budget(web: Site, tmp_path: Path) -> None:
    # The feed: one description of 150,000 "<!--" took 101 s; summaries read
    # only the start of a body, and cleanup is linear.
    flood = web.add("/flood.xml", feed("Flood", body="<!--" * 150_000))
    good = web.add("/good.xml", feed("Harbour reopens", items=3))
    budget = 2.0

    began = time.monotonic()
    result = collect_now([flood, good], tmp_path, parse_timeout=budget)
    elapsed = time.monotonic() - began

    assert elapsed < budget + 6, f"collection took {elapsed:.1f}s"
    reports = {f.url: f for f in result.feeds}
    assert reports[flood].ok or "DIGEST_PARSE_TIMEOUT" in reports[flood].error
    assert {a.title for a in result.articles} >= {f"Harbour reopens {i}" for i in range(3)}


# A feed that takes longer than its budget: 40,000 items parse in seconds, not 0.5 s.
HUGE_ITEMS = 40_000


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "worker-processes"])
def test_a_feed_over_its_parse_budget_fails_alone(web: Site, tmp_path: Path, workers: int) -> None:
    huge = web.add("/huge.xml", feed("Huge", items=HUGE_ITEMS))
    # Nine small feeds as well, so that two workers are started (eight feeds per worker).
    goods = [web.add(f"/good{i}.xml", feed(f"Story {i}")) for i in range(9)]
    budget = 0.5

    began = time.monotonic()
    result = collect_now([huge, *goods], tmp_path, parse_timeout=budget, parse_workers=workers)
    elapsed = time.monotonic() - began

    assert elapsed < budget + 8, f"collection took {elapsed:.1f}s"
    reports = {f.url: f for f in result.feeds}
    assert reports[huge].error == (
        "took longer than 0.5s to parse (DIGEST_PARSE_TIMEOUT): the feed is too large or "
        "malformed; ask its publisher, or raise the setting"
    )
    assert all(reports[url].ok for url in goods)
    assert len(result.articles) == 9


# 4. No way inside from a public host


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Names answer what the test says (one answer per lookup, the last repeated);
    the loopback server plays the public internet for PUBLIC_IP."""
    answers: dict[str, list[list[str]]] = {}
    real_resolve, real_open = netguard.resolve, netguard.open_tcp

    async def resolve(host: str, port: int) -> list[str]:
        if host in answers:
            queue = answers[host]
            return queue.pop(0) if len(queue) > 1 else queue[0]
        return await real_resolve(host, port)

    async def open_tcp(address: str, port: int, **options: object):
        return await real_open("127.0.0.1" if address == PUBLIC_IP else address, port, **options)

    monkeypatch.setattr(netguard, "resolve", resolve)
    monkeypatch.setattr(netguard, "open_tcp", open_tcp)
    return answers


def test_redirects_from_a_public_host_inside_are_refused(
    web: Site, inside: Site, tmp_path: Path, public_dns: dict[str, list[list[str]]]
) -> None:
    public_dns["feeds.example.com"] = [[PUBLIC_IP]]
    public_dns["intranet.example.com"] = [["10.1.2.3"]]
    inside.add("/secret", feed("Internal payroll"))
    web.add("/to-loopback", b"", 302, Location=inside.url("/secret"))
    web.add("/to-private", b"", 302, Location=inside.url("/secret", "intranet.example.com"))
    web.add("/to-v6-loopback", b"", 302, Location=f"http://[::1]:{inside.port}/secret")
    web.add("/fine", b"", 302, Location=web.url("/good.xml", "feeds.example.com"))
    web.add("/good.xml", feed("Harbour reopens"))
    urls = {
        path: web.url(path, "feeds.example.com")
        for path in ("/to-loopback", "/to-private", "/to-v6-loopback", "/fine")
    }
    # Configured directly on loopback, the same redirect is the operator's choice.
    direct = web.url("/to-loopback")

    result = collect_now([*urls.values(), direct], tmp_path)

    reports = {f.url: f for f in result.feeds}
    for path in ("/to-loopback", "/to-private", "/to-v6-loopback"):
        assert not reports[urls[path]].ok
        assert "refused: a feed on a public host led to" in reports[urls[path]].error
    assert reports[urls["/fine"]].ok
    assert reports[direct].ok
    assert inside.hits == ["/secret"]  # the direct feed only
    titles = {a.title for a in result.articles}
    assert "Harbour reopens 0" in titles


def test_a_name_that_answers_loopback_on_the_second_lookup_is_refused(
    web: Site, tmp_path: Path, public_dns: dict[str, list[list[str]]]
) -> None:
    web.add("/feed.xml", feed("Rebound"))
    public_dns["rebind.example.com"] = [[PUBLIC_IP], ["127.0.0.1"]]
    url = web.url("/feed.xml", "rebind.example.com")

    result = collect_now([url], tmp_path)

    assert "refused: a feed on a public host led to rebind.example.com (127.0.0.1)" in (
        result.feeds[0].error or ""
    )
    assert web.hits == []


# 9. Entity declarations are refused wherever they sit


BOMB = (
    '<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    '<rss version="2.0"><channel><title>t</title><item><title>Bomb &c;</title>'
    "<link>https://x.example.com/1</link></item></channel></rss>"
)


@pytest.mark.parametrize(
    "prefix",
    ["", "<!-- <x -->", '<?xml version="1.0"?>\n<!-- <x -->\n', "\n\n<?xml version='1.0'?>"],
)
def test_entity_declarations_are_refused_wherever_they_sit(
    web: Site, tmp_path: Path, prefix: str
) -> None:
    url = web.add("/bomb.xml", (prefix + BOMB).encode())
    xxe = web.add(
        "/xxe.xml",
        (
            prefix + '<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
            '<rss version="2.0"><channel><title>t</title><item><title>X &x;</title>'
            "<link>https://x.example.com/1</link></item></channel></rss>"
        ).encode(),
    )

    result = collect_now([url, xxe], tmp_path)

    for report in result.feeds:
        assert not report.ok
        assert "declares its own XML entities" in report.error
    assert result.articles == []


# Issue 14: items without a link, broken roots, feeds that yield nothing


def test_items_without_a_link_are_kept_and_point_somewhere_useful(
    web: Site, tmp_path: Path
) -> None:
    status = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Status</title>'
        b"<link>https://status.example.com/</link>"
        b"<item><title>Outage resolved</title><guid>https://status.example.com/i/41</guid>"
        b"<pubDate>Thu, 19 Mar 2026 05:00:00 GMT</pubDate></item>"
        b'<item><title>Maintenance tonight</title><guid isPermaLink="false">m-42</guid>'
        b"<pubDate>Thu, 19 Mar 2026 05:30:00 GMT</pubDate></item>"
        b"<item><title>Degraded API</title><pubDate>Thu, 19 Mar 2026 06:00:00 GMT</pubDate></item>"
        b"</channel></rss>"
    )
    url = web.add("/status.xml", status)

    result = collect_now([url], tmp_path)

    links = {a.title: a.url for a in result.articles}
    assert links == {
        "Outage resolved": "https://status.example.com/i/41",
        "Maintenance tonight": "https://status.example.com/",
        "Degraded API": "https://status.example.com/",
    }
    assert len({a.key for a in result.articles}) == 3


def test_feeds_that_yield_nothing_say_why(web: Site, tmp_path: Path) -> None:
    linkless = web.add("/linkless.xml", feed("Nowhere", items=1046, link=False))
    broken = web.add(
        "/broken.xml", b'<?xml version="1.0"?><rss version="2.0"><chanel><title>x</title></rss>'
    )
    empty = web.add("/empty.xml", feed("Quiet", items=0))

    result = collect_now([linkless, broken, empty], tmp_path)

    reports = {f.url: f for f in result.feeds}
    assert reports[linkless].error == (
        "no usable articles in its 1,046 items: 1,046 without a link (and the feed names no site)"
    )
    assert reports[broken].error.startswith("not a feed")
    assert reports[empty].ok  # a feed with nothing today is a quiet feed, not a broken one
