"""Turn feed bytes into entries with clean text and UTC times.

RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and JSON Feed are read by one lxml pass that
matches elements by local name, so feeds with odd or missing namespaces still
work. XML is read by `xmlsafe` (no entity expansion, no DTD, no network).
Parsing runs under a time budget (DIGEST_PARSE_TIMEOUT), checked between items
and while summarising, so one hostile feed fails alone instead of stalling a run.

This module is imported by parsing worker processes: it must stay free of I/O.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from urllib.parse import urljoin

from lxml import etree

from digest.collect.clean import clean_title, summarise
from digest.collect.dates import parse_date
from digest.collect.decode import to_utf8
from digest.collect.urls import canonical_url
from digest.collect.xmlsafe import XMLError, local_name, xml_root
from digest.errors import FeedParseError, ParseTimeout

# Namespaces whose elements mean what their local name says; anything else
# (media:title, itunes:summary...) is used only when these give nothing.
_CORE_NS = frozenset(
    {
        "",
        "http://purl.org/rss/1.0/",
        "http://my.netscape.com/rdf/simple/0.9/",
        "http://www.w3.org/2005/Atom",
        "http://purl.org/atom/ns#",
        "http://purl.org/rss/1.0/modules/content/",
        "http://backend.userland.com/rss2",
    }
)
# Local name -> field. Dates are listed most to least preferred.
_FIELDS = {
    "title": "title",
    "link": "link",
    "guid": "guid",
    "id": "guid",
    "description": "summary",
    "summary": "summary",
    "encoded": "content",
    "content": "content",
    "pubDate": "date0",
    "published": "date0",
    "issued": "date0",
    "date": "date1",
    "created": "date1",
    "updated": "date2",
    "modified": "date2",
}
_DATE_FIELDS = ("date0", "date1", "date2")
_TITLE_FROM_BODY = 120


T = TypeVar("T")


@dataclass(slots=True)
class Entry:
    title: str
    url: str
    key: str
    summary: str
    published: datetime | None
    guid: str = ""


@dataclass(slots=True)
class ParsedFeed:
    title: str
    entries: list[Entry] = field(default_factory=list)


class _Budget:
    """The wall-clock time one feed may take to parse; 0 means unlimited."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds if seconds else None

    def check(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise ParseTimeout(self.seconds)


def parse_feed(
    content: bytes,
    base_url: str,
    summary_length: int,
    content_type: str = "",
    budget: float = 0,
) -> ParsedFeed:
    """Parse any supported feed within `budget` seconds; FeedParseError when nothing usable."""
    clock = _Budget(budget)
    head = content[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"{", b"[")):
        return _parse_json(content, base_url, summary_length, clock)
    return _parse_xml(to_utf8(content, content_type), base_url, summary_length, clock)


def _parse_xml(data: bytes, base_url: str, summary_length: int, clock: _Budget) -> ParsedFeed:
    try:
        root = xml_root(data)
    except XMLError as exc:
        raise FeedParseError(str(exc)) from None
    clock.check()
    kind = local_name(root.tag) if isinstance(root.tag, str) else ""
    if kind not in ("rss", "RDF", "feed", "channel"):
        raise FeedParseError(
            f"not a feed: the document is <{kind or '?'}>, not RSS, Atom or JSON Feed"
        )
    channel = root if kind in ("feed", "channel") else _child(root, "channel")
    # RSS puts items in the channel, RDF beside it; sloppy RSS sometimes beside it too.
    parents = [p for p in dict.fromkeys([channel, root]) if p is not None]
    items = [
        el
        for parent in parents
        for el in parent
        if isinstance(el.tag, str) and local_name(el.tag) in ("item", "entry")
    ]
    if channel is None and not items:
        raise FeedParseError(f"not a feed: its <{kind}> root holds no channel and no items")
    title_el = _child(channel, "title") if channel is not None else None
    feed_title = clean_title(_markup(title_el)) if title_el is not None else ""
    site = _site_link(channel, base_url) if channel is not None else ""
    return _collect(
        items, lambda item: _xml_entry(item, base_url, site, summary_length, clock), feed_title
    )


def _collect(items: list[T], read: Callable[[T], Entry | str], title: str) -> ParsedFeed:
    """Entries from items; when items exist but none is usable, say why instead of 'ok'."""
    entries = []
    skipped: dict[str, int] = {}
    for item in items:
        entry = read(item)
        if isinstance(entry, Entry):
            entries.append(entry)
        else:
            skipped[entry] = skipped.get(entry, 0) + 1
    if items and not entries:
        reasons = ", ".join(f"{n:,} {why}" for why, n in skipped.items())
        raise FeedParseError(f"no usable articles in its {len(items):,} items: {reasons}")
    return ParsedFeed(title=title, entries=entries)


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    for el in parent:
        if isinstance(el.tag, str) and local_name(el.tag) == name:
            return el
    return None


def _site_link(channel: etree._Element, base_url: str) -> str:
    """The feed's own web page: RSS <link>, or Atom's alternate <link href>."""
    for el in channel:
        if not isinstance(el.tag, str) or local_name(el.tag) != "link":
            continue
        href = el.get("href")
        if href is None:
            href = (el.text or "").strip()
        elif el.get("rel", "alternate") != "alternate":
            continue
        if href:
            return _absolute(href.strip(), base_url)
    return ""


def _absolute(link: str, base_url: str) -> str:
    if link and not link.startswith(("http://", "https://")) and base_url.startswith("http"):
        return urljoin(base_url, link)
    return link


def _markup(el: etree._Element) -> str:
    """An element's content as markup: its text, or its children serialised (XHTML content)."""
    if len(el) == 0:
        return el.text or ""
    parts = [el.text or ""]
    parts += [etree.tostring(child, encoding=str, with_tail=True) for child in el]
    return "".join(parts)


def _xml_entry(
    item: etree._Element, base_url: str, site: str, summary_length: int, clock: _Budget
) -> Entry | str:
    found: dict[str, tuple[int, str]] = {}
    alternate = ""
    permalink = True
    for child in item:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        ns = tag[1:].partition("}")[0] if tag[:1] == "{" else ""
        name = _FIELDS.get(local_name(tag))
        if name is None:
            continue
        rank = 0 if ns in _CORE_NS else 1
        if name == "link" and child.get("href") is not None:
            # Atom: the first alternate link is the article; self, enclosure... are not.
            if child.get("rel", "alternate") == "alternate" and not alternate:
                alternate = child.get("href", "")
            continue
        if name == "content" and child.get("mode") == "base64":
            continue
        value = _markup(child)
        if not value.strip():
            continue
        if name not in found or rank < found[name][0]:
            found[name] = (rank, value)
            if name == "guid":
                permalink = child.get("isPermaLink", "true").lower() != "false"
    get = {name: value for name, (_, value) in found.items()}
    published = None
    for name in _DATE_FIELDS:
        if name in get and (published := parse_date(get[name])) is not None:
            break
    return _entry(
        title=get.get("title", ""),
        link=alternate or get.get("link", "").strip(),
        guid=get.get("guid", "").strip(),
        permalink=permalink,
        body=get.get("summary") or get.get("content") or "",
        published=published,
        base_url=base_url,
        site=site,
        summary_length=summary_length,
        clock=clock,
    )


def _entry(
    *,
    title: str,
    link: str,
    guid: str,
    permalink: bool,
    body: str,
    published: datetime | None,
    base_url: str,
    site: str,
    summary_length: int,
    clock: _Budget,
) -> Entry | str:
    """An entry, or why the item cannot be one (counted in the feed's report)."""
    clock.check()
    key = ""
    if not link and permalink and guid.startswith(("http://", "https://")):
        link = guid
    link = _absolute(link, base_url)
    if not link.startswith(("http://", "https://")):
        # News without a page of its own (a status feed, say) still points somewhere
        # useful: the feed's site. Its key keeps it apart from the site's other items.
        if not site.startswith(("http://", "https://")):
            return "without a link (and the feed names no site)"
        link = site
        mark = guid or hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()[:16]
        key = f"{canonical_url(site)}#{mark}"
    summary = summarise(body, summary_length) if body else ""
    clean = clean_title(title) if title else ""
    if not clean:
        # RSS lets an item have only a description; its start is the best headline.
        clean = summarise(body, _TITLE_FROM_BODY) if body else ""
    if not clean:
        return "without a title or text"
    return Entry(
        title=clean,
        url=link,
        key=key or canonical_url(link),
        summary=summary,
        published=published,
        guid=guid,
    )


def _parse_json(content: bytes, base_url: str, summary_length: int, clock: _Budget) -> ParsedFeed:
    try:
        doc = json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise FeedParseError(f"not a readable JSON feed: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise FeedParseError("not a feed: a JSON document without an 'items' list")
    home = doc.get("home_page_url")
    site = _absolute(home.strip(), base_url) if isinstance(home, str) else ""

    def read(item: object) -> Entry | str:
        if not isinstance(item, dict):
            return "that are not JSON objects"
        text = {k: v for k, v in item.items() if isinstance(v, str)}
        return _entry(
            title=text.get("title", ""),
            link=(text.get("url") or text.get("external_url") or "").strip(),
            guid=str(item.get("id") or "").strip(),
            permalink=True,
            body=text.get("summary") or text.get("content_html") or text.get("content_text") or "",
            published=parse_date(text.get("date_published") or text.get("date_modified")),
            base_url=site or base_url,
            site=site,
            summary_length=summary_length,
            clock=clock,
        )

    title = doc.get("title") if isinstance(doc.get("title"), str) else ""
    return _collect(doc["items"], read, clean_title(title))


def feed_to_json(feed: ParsedFeed) -> str:
    """Entries as stored in the feed cache, to be read back by `feed_from_json`."""
    return json.dumps(
        [
            [
                e.title,
                e.url,
                e.key,
                e.summary,
                e.published.isoformat() if e.published else None,
                e.guid,
            ]
            for e in feed.entries
        ],
        ensure_ascii=False,
    )


def feed_from_json(title: str, payload: str) -> ParsedFeed:
    entries = [
        Entry(
            title=t,
            url=u,
            key=k,
            summary=s,
            published=datetime.fromisoformat(p) if p else None,
            guid=g,
        )
        for t, u, k, s, p, g in json.loads(payload)
    ]
    return ParsedFeed(title=title, entries=entries)
