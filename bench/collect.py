"""Benchmark: collect 500 feeds x 50 items from a loopback server, against feedparser.

    python bench/collect.py [--feeds 500] [--items 50]

Serves generated feeds (RSS 2.0, Atom 1.0, RSS 1.0 and JSON Feed; summaries and
full content; some feeds over 1 MB) from a ThreadingHTTPServer in a child process,
then measures, each in its own child process so peak memory is its own:

- baseline: `feedparser.parse(url)` one feed after another, as simple
  feed-to-mail tools do;
- digest: `digest.collect.collect(...)` with default settings.

Prints articles per second, wall time and peak memory (PSS of the process plus
its parsing workers) for both, and the ratio digest/baseline.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NOW = datetime(2026, 3, 19, 7, 0, tzinfo=UTC)
WORDS = [
    "government",
    "minister",
    "parliament",
    "market",
    "shares",
    "energy",
    "storm",
    "coast",
    "flood",
    "council",
    "election",
    "vote",
    "budget",
    "inflation",
    "rates",
    "bank",
    "court",
    "ruling",
    "police",
    "strike",
    "union",
    "talks",
    "summit",
    "treaty",
    "border",
    "trade",
    "tariffs",
    "climate",
    "science",
    "research",
    "hospital",
    "school",
    "city",
    "transport",
    "rail",
    "airport",
    "football",
    "final",
    "season",
    "club",
    "coach",
    "player",
    "record",
]


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def _paragraphs(rng: random.Random, size: int) -> str:
    out = []
    total = 0
    while total < size:
        para = " ".join(_sentence(rng, rng.randint(8, 20)) for _ in range(4))
        chunk = f'<p>{para} <a href="https://ex.com/{rng.randint(1, 9999)}">more</a></p>'
        out.append(chunk)
        total += len(chunk)
    return "".join(out)


def make_feed(index: int, items: int, rng: random.Random) -> tuple[str, bytes]:
    """One feed; every 20th is over 1 MB of content."""
    big = index % 20 == 0
    content_size = 26_000 if big else rng.randint(600, 2500)
    # feedparser cannot read JSON Feed, so the bench sticks to the formats both read.
    kind = ("rss", "rss", "rss", "atom", "rdf", "rss")[index % 6]
    host = f"site{index}.example.com"
    rows = []
    for i in range(items):
        when = NOW - timedelta(minutes=20 * i + index % 17)
        title = _sentence(rng, rng.randint(5, 12)).rstrip(".")
        rows.append(
            {
                "title": title,
                "url": f"https://{host}/news/{index}-{i}?utm_source=rss",
                "summary": _sentence(rng, 30) + " " + _sentence(rng, 25),
                "content": _paragraphs(rng, content_size),
                "when": when,
            }
        )
    if kind == "atom":
        body = "".join(
            f'<entry><title>{r["title"]}</title><link href="{r["url"]}"/>'
            f"<id>{r['url']}</id><published>{r['when'].isoformat()}</published>"
            f"<updated>{r['when'].isoformat()}</updated>"
            f"<summary>{r['summary']}</summary>"
            f'<content type="html"><![CDATA[{r["content"]}]]></content></entry>'
            for r in rows
        )
        doc = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<feed xmlns="http://www.w3.org/2005/Atom"><title>Site {index}</title>'
            f"<id>https://{host}/</id><updated>{NOW.isoformat()}</updated>{body}</feed>"
        )
        return f"feed{index}.atom", doc.encode()
    if kind == "rdf":
        body = "".join(
            f'<item rdf:about="{r["url"]}"><title>{r["title"]}</title>'
            f"<link>{r['url']}</link><dc:date>{r['when'].isoformat()}</dc:date>"
            f"<description>{r['summary']}</description>"
            f"<content:encoded><![CDATA[{r['content']}]]></content:encoded></item>"
            for r in rows
        )
        doc = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            f'<channel rdf:about="https://{host}/"><title>Site {index}</title>'
            f"<link>https://{host}/</link><description>d</description></channel>{body}</rdf:RDF>"
        )
        return f"feed{index}.rdf", doc.encode()
    body = "".join(
        f"<item><title>{r['title']}</title><link>{r['url']}</link>"
        f"<guid>{r['url']}</guid>"
        f"<pubDate>{r['when'].strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
        f"<description><![CDATA[<p>{r['summary']}</p>]]></description>"
        f"<content:encoded><![CDATA[{r['content']}]]></content:encoded></item>"
        for r in rows
    )
    doc = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>Site {index}</title><link>https://{host}/</link>"
        f"<description>d</description>{body}</channel></rss>"
    )
    return f"feed{index}.xml", doc.encode()


def _serve(root: str, ready: mp.Queue) -> None:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=root))
    server.daemon_threads = True
    ready.put(server.server_port)
    server.serve_forever()


def _tree_memory(pid: int) -> int:
    """Proportional set size (PSS) of a process and all its descendants, from /proc.

    PSS counts a page shared by n processes as 1/n in each, so the sum is what the
    tree really occupies (plain RSS would count shared library pages once per worker).
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def _baseline(urls: list[str], out: mp.Queue) -> None:
    import feedparser

    began = time.perf_counter()
    count = sum(len(feedparser.parse(url).entries) for url in urls)
    out.put((count, time.perf_counter() - began))


def _digest(urls: list[str], db: str, out: mp.Queue) -> None:
    from digest.collect import collect
    from digest.config import load_settings
    from digest.db import Database

    settings = load_settings(database_url=f"sqlite:///{db}")
    store = Database(settings.database_url).feeds
    began = time.perf_counter()
    result = collect(urls, NOW - timedelta(hours=24), NOW, store, settings)
    elapsed = time.perf_counter() - began
    failed = [f.url for f in result.feeds if not f.ok]
    out.put((len(result.articles), elapsed, failed))


def _measure(target, *args) -> tuple[tuple, int]:
    """Run target in a child process; return what it put and its peak memory (PSS)."""
    out: mp.Queue = mp.Queue()
    proc = mp.Process(target=target, args=(*args, out))
    proc.start()
    peak = 0
    while proc.is_alive() and out.empty():
        peak = max(peak, _tree_memory(proc.pid))
        time.sleep(0.05)
    result = out.get()
    proc.join()
    return result, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--items", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    try:
        root = work / "www"
        root.mkdir()
        rng = random.Random(20260319)
        size = 0
        names = []
        for index in range(args.feeds):
            name, data = make_feed(index, args.items, rng)
            (root / name).write_bytes(data)
            names.append(name)
            size += len(data)
        ready: mp.Queue = mp.Queue()
        server = mp.Process(target=_serve, args=(str(root), ready), daemon=True)
        server.start()
        port = ready.get(timeout=10)
        urls = [f"http://127.0.0.1:{port}/{name}" for name in names]
        expected = args.feeds * args.items
        print(f"{args.feeds} feeds x {args.items} items, {size / 1e6:.1f} MB, on 127.0.0.1")

        (base_n, base_s), base_peak = _measure(_baseline, urls)
        (ours_n, ours_s, failed), ours_peak = _measure(_digest, urls, str(work / "bench.db"))
        server.terminate()

        for label, n, secs, peak in (
            ("baseline feedparser, one at a time", base_n, base_s, base_peak),
            ("digest collect", ours_n, ours_s, ours_peak),
        ):
            print(
                f"{label:36} {n:6d}/{expected} articles {secs:7.2f} s "
                f"{n / secs:8.0f} articles/s  peak {peak / 2**20:6.0f} MB"
            )
        if failed:
            print(f"failed feeds: {failed[:5]}")
        ratio = (ours_n / ours_s) / (base_n / base_s)
        print(f"ratio digest/baseline (articles per second): {ratio:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
