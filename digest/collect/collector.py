"""The collect stage: fetch every feed at once, parse on every core, keep the window.

A feed that fails is reported in its FeedReport and never stops the others. A
feed that answers 304 Not Modified contributes the entries cached from its last
parse, so an unchanged feed costs one request and no parsing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.collect.clean import source_name
from digest.collect.fetch import Fetcher, FetchError
from digest.collect.parse import FeedParseError, ParsedFeed, feed_from_json, feed_to_json
from digest.collect.pool import ParsePool
from digest.collect.urls import clean_url
from digest.config import Settings
from digest.db.feeds import FeedOutcome, FeedRepository
from digest.models import Article, FeedReport

log = logging.getLogger(__name__)

# A publisher's clock may run a little fast; beyond this a date is not believed.
FUTURE_TOLERANCE = timedelta(minutes=15)


@dataclass(slots=True)
class Collection:
    articles: list[Article]
    feeds: list[FeedReport]


@dataclass(slots=True)
class _Result:
    report: FeedReport
    outcome: FeedOutcome
    parsed: ParsedFeed | None


def collect(
    sources: list[str],
    start: datetime,
    end: datetime,
    store: FeedRepository,
    settings: Settings,
    *,
    count_health: bool = True,
) -> Collection:
    """Articles published in (start, end] from all sources, each once, newest first.

    `count_health=False` (previews, dry runs) reports failures without moving any
    feed toward dead: only real runs count.
    """
    results = asyncio.run(
        _fetch_all(sources, store, settings, conditional=True, count_health=count_health)
    )
    return _assemble(results, start, end, store)


def check(sources: list[str], store: FeedRepository, settings: Settings) -> list[FeedReport]:
    """Fetch and parse every feed afresh (no conditional GET); `articles` counts its entries.

    A check never counts toward a feed's health.
    """
    results = asyncio.run(
        _fetch_all(sources, store, settings, conditional=False, count_health=False)
    )
    for result in results:
        if result.parsed is not None:
            result.report.articles = len(result.parsed.entries)
    return [r.report for r in results]


async def _fetch_all(
    sources: list[str],
    store: FeedRepository,
    settings: Settings,
    *,
    conditional: bool,
    count_health: bool,
) -> list[_Result]:
    sources = list(dict.fromkeys(sources))
    validators = store.validators(sources) if conditional else {}
    gate = asyncio.Semaphore(settings.fetch_concurrency)
    pool = ParsePool(settings.parse_workers, len(sources), settings.parse_timeout)
    try:
        pool.start()
        async with Fetcher(settings) as fetcher:
            results = await asyncio.gather(
                *(
                    _one(fetcher, pool, gate, src, validators.get(src), store, settings)
                    for src in sources
                )
            )
    finally:
        pool.close()
    failures = store.record_outcomes((r.outcome for r in results), count_health=count_health)
    for result in results:
        report = result.report
        report.failures = failures.get(report.url, 0)
        if report.ok:
            continue
        report.dead = report.failures >= settings.feed_dead_after
        if report.dead:
            log.warning(
                "feed dead: %s has failed %d runs in a row (last: %s); fix or remove it "
                "with `digest feeds remove`",
                report.url,
                report.failures,
                report.error,
            )
        else:
            log.warning("feed failed: %s: %s", report.url, report.error)
    return results


async def _one(
    fetcher: Fetcher,
    pool: ParsePool,
    gate: asyncio.Semaphore,
    source: str,
    validators: tuple[str | None, str | None] | None,
    store: FeedRepository,
    settings: Settings,
) -> _Result:
    began = time.perf_counter()
    report = FeedReport(url=source, ok=True)
    outcome = FeedOutcome(url=source)
    parsed = None
    try:
        # The host's gate first, then a global slot, so no slot idles behind a busy host.
        # The slot is kept until the body is parsed: that bounds the bytes held in memory.
        async with fetcher.host_gate(source):
            await gate.acquire()
            try:
                fetched = await fetcher.fetch(source, *(validators or (None, None)))
                if fetched.content is None:
                    cached = store.cached(source)
                    if cached is not None:
                        parsed = feed_from_json(*cached)
                        report.not_modified = True
                    else:  # the cache was lost: ask again, unconditionally
                        fetched = await fetcher.fetch(source)
            except BaseException:
                gate.release()
                raise
        try:
            if parsed is None and fetched.content is not None:
                parsed = await pool.parse(
                    fetched.content, fetched.url, settings.summary_length, fetched.content_type
                )
                outcome.entries_json = feed_to_json(parsed)
                outcome.etag, outcome.last_modified = fetched.etag, fetched.last_modified
        finally:
            gate.release()
        if parsed is None:
            raise FetchError("the server answered 304 Not Modified to an unconditional request")
    except (FetchError, FeedParseError) as exc:
        report.ok = False
        report.error = outcome.error = str(exc)
        parsed = None
    except Exception as exc:
        # A bug met on one strange feed must not cost the other feeds their articles.
        log.exception("unexpected error collecting %s", source)
        report.ok = False
        report.error = outcome.error = f"unexpected error: {type(exc).__name__}: {exc}"
        parsed = None
    report.title = outcome.title = parsed.title if parsed else ""
    report.seconds = time.perf_counter() - began
    return _Result(report=report, outcome=outcome, parsed=parsed)


def _assemble(
    results: list[_Result], start: datetime, end: datetime, store: FeedRepository
) -> Collection:
    """Keep the window's articles, once each; undated ones take their first-seen time."""
    undated = [
        e.key
        for r in results
        if r.parsed
        for e in r.parsed.entries
        if e.published is None or e.published > end + FUTURE_TOLERANCE
    ]
    first_seen = store.first_seen(undated, end)

    by_key: dict[str, Article] = {}
    by_guid: dict[str, str] = {}
    counts: dict[str, int] = {}
    for result in results:
        if result.parsed is None:
            continue
        report = result.report
        source = source_name(report.title, report.url) or report.url
        for entry in result.parsed.entries:
            dated = entry.key not in first_seen
            published = entry.published if dated else first_seen[entry.key]
            if not (start < published <= end):  # type: ignore[operator]
                continue
            counts[report.url] = counts.get(report.url, 0) + 1
            # A GUID that names itself globally (URL, URN, tag:) marks one article
            # even when feeds link it differently.
            key = entry.key
            if _global_guid(entry.guid):
                key = by_guid.setdefault(entry.guid, key)
            article = Article(
                key=key,
                title=entry.title,
                url=clean_url(entry.url),
                source=source,
                feed_url=report.url,
                published=published,  # type: ignore[arg-type]
                summary=entry.summary,
                dated=dated,
            )
            kept = by_key.get(key)
            if kept is None or article.published < kept.published:
                by_key[key] = article

    for result in results:
        result.report.articles = counts.get(result.report.url, 0)
    articles = sorted(by_key.values(), key=lambda a: (a.published, a.key), reverse=True)
    return Collection(articles=articles, feeds=[r.report for r in results])


def _global_guid(guid: str) -> bool:
    return ":" in guid and len(guid) >= 8
