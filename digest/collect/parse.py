"""Turn feed bytes into entries with clean text and UTC times."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime

import feedparser

from digest.collect.clean import clean_title, summarise
from digest.collect.urls import canonical_url


class FeedParseError(Exception):
    """The bytes are not a feed we can read."""


@dataclass(slots=True)
class Entry:
    title: str
    url: str
    key: str
    summary: str
    published: datetime | None


@dataclass(slots=True)
class ParsedFeed:
    title: str
    entries: list[Entry] = field(default_factory=list)


def parse_feed(content: bytes, base_url: str, summary_length: int) -> ParsedFeed:
    """Parse RSS or Atom bytes; raise FeedParseError when nothing usable is there."""
    parsed = feedparser.parse(content, response_headers={"content-location": base_url})
    if parsed.bozo and not parsed.entries:
        reason = getattr(parsed, "bozo_exception", None) or "not a feed"
        raise FeedParseError(f"not a readable RSS or Atom feed: {reason}")
    if not parsed.entries and not parsed.feed.get("title") and parsed.version == "":
        raise FeedParseError("not a readable RSS or Atom feed: no channel or entries found")
    feed_title = clean_title(parsed.feed.get("title", ""))
    entries = []
    for item in parsed.entries:
        entry = _entry(item, summary_length)
        if entry is not None:
            entries.append(entry)
    return ParsedFeed(title=feed_title, entries=entries)


def _entry(item: feedparser.FeedParserDict, summary_length: int) -> Entry | None:
    link = item.get("link") or ""
    guid = item.get("id") or ""
    title = clean_title(item.get("title") or "")
    if not link and guid.startswith(("http://", "https://")):
        link = guid
    if not title or not link.startswith(("http://", "https://")):
        return None
    body = item.get("summary") or ""
    if not body and item.get("content"):
        body = item["content"][0].get("value", "")
    key = canonical_url(link) if link else guid
    return Entry(
        title=title,
        url=link,
        key=key,
        summary=summarise(body, summary_length),
        published=_time(item),
    )


def _time(item: feedparser.FeedParserDict) -> datetime | None:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        value = item.get(name)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None
