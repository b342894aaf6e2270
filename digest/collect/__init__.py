"""Collect: fetch every feed at once, parse, clean, keep the window, drop repeats.

A feed that fails is reported in its FeedReport and never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from digest.collect.fetch import FetchError, fetch, make_client
from digest.collect.parse import FeedParseError, ParsedFeed, parse_feed
from digest.config import Settings
from digest.models import Article, FeedReport
from digest.store import Store

log = logging.getLogger(__name__)

# A publisher's clock may run a little fast; beyond this a date is not believed.
FUTURE_TOLERANCE = timedelta(minutes=15)


@dataclass(slots=True)
class Collection:
    articles: list[Article]
    feeds: list[FeedReport]


def collect(
    sources: list[str], start: datetime, end: datetime, store: Store, settings: Settings
) -> Collection:
    """Articles published in (start, end] from all sources, each once, newest first."""
    return asyncio.run(collect_async(sources, start, end, store, settings))


async def collect_async(
    sources: list[str], start: datetime, end: datetime, store: Store, settings: Settings
) -> Collection:
    async with make_client(settings.fetch_timeout, settings.fetch_concurrency) as client:
        gate = asyncio.Semaphore(settings.fetch_concurrency)
        results = await asyncio.gather(
            *(_one(client, gate, src, settings) for src in dict.fromkeys(sources))
        )

    reports = [report for report, _ in results]
    for report in reports:
        store.record_feed_result(report.url, report.title, report.error)
        if not report.ok:
            log.warning("feed failed: %s: %s", report.url, report.error)

    undated = [
        e.key
        for _, parsed in results
        if parsed
        for e in parsed.entries
        if e.published is None or e.published > end + FUTURE_TOLERANCE
    ]
    first_seen = store.first_seen(undated, end)

    by_key: dict[str, Article] = {}
    counts: dict[str, int] = {}
    for report, parsed in results:
        if parsed is None:
            continue
        source = report.title or urlsplit(report.url).hostname or report.url
        for entry in parsed.entries:
            dated = entry.key not in first_seen
            published = entry.published if dated else first_seen[entry.key]
            if not (start < published <= end):  # type: ignore[operator]
                continue
            article = Article(
                key=entry.key,
                title=entry.title,
                url=entry.url,
                source=source,
                feed_url=report.url,
                published=published,
                summary=entry.summary,
                dated=dated,
            )
            counts[report.url] = counts.get(report.url, 0) + 1
            kept = by_key.get(entry.key)
            if kept is None or article.published < kept.published:
                by_key[entry.key] = article

    for report in reports:
        report.articles = counts.get(report.url, 0)
    articles = sorted(by_key.values(), key=lambda a: (a.published, a.key), reverse=True)
    return Collection(articles=articles, feeds=reports)


async def _one(
    client, gate: asyncio.Semaphore, source: str, settings: Settings
) -> tuple[FeedReport, ParsedFeed | None]:
    began = time.perf_counter()
    try:
        async with gate:
            fetched = await fetch(client, source, settings.max_feed_bytes, settings.fetch_timeout)
        parsed = await asyncio.to_thread(
            parse_feed, fetched.content, source, settings.summary_length
        )
    except (FetchError, FeedParseError) as exc:
        elapsed = time.perf_counter() - began
        return FeedReport(url=source, ok=False, error=str(exc), seconds=elapsed), None
    elapsed = time.perf_counter() - began
    report = FeedReport(url=source, title=parsed.title, ok=True, seconds=elapsed)
    return report, parsed
