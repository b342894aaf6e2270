"""Turn feed bytes into entries with clean text and UTC times.

RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and JSON Feed are read by one lxml pass that
matches elements by local name, so feeds with odd or missing namespaces still
work. lxml is told never to expand entities, load DTDs or touch the network;
documents that declare their own entities are refused outright.

This module is imported by parsing worker processes: it must stay free of I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from html.entities import name2codepoint
from urllib.parse import urljoin

from lxml import etree

from digest.collect.clean import clean_title, summarise
from digest.collect.dates import parse_date
from digest.collect.decode import to_utf8
from digest.collect.urls import canonical_url
from digest.errors import FeedParseError

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
_PROLOG_END = re.compile(rb"<[A-Za-z_]")
_NAMED_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
_BARE_AMP = re.compile(r"&(?!#?[A-Za-z0-9]{1,32};)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# HTML void elements written unescaped and unclosed (<br>) would swallow what follows.
_UNCLOSED_VOID = re.compile(r"<(br|hr|img)(\s[^<>]*?)?\s*(?<!/)>", re.IGNORECASE)
_TITLE_FROM_BODY = 120


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


def parse_feed(
    content: bytes, base_url: str, summary_length: int, content_type: str = ""
) -> ParsedFeed:
    """Parse any supported feed; raise FeedParseError when nothing usable is there."""
    head = content[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"{", b"[")):
        return _parse_json(content, base_url, summary_length)
    return _parse_xml(to_utf8(content, content_type), base_url, summary_length)


def _parse_xml(data: bytes, base_url: str, summary_length: int) -> ParsedFeed:
    root = xml_root(data)
    tag = root.tag if isinstance(root.tag, str) else ""
    kind = _local(tag)[1]
    if kind not in ("rss", "RDF", "feed", "channel"):
        raise FeedParseError(
            f"not a readable RSS, Atom or JSON feed: the document is <{kind or '?'}>"
        )
    channel = root if kind in ("feed", "channel") else _child(root, "channel")
    # RSS puts items in the channel, RDF beside it; sloppy RSS sometimes beside it too.
    parents = [p for p in dict.fromkeys([channel, root]) if p is not None]
    items = [
        el
        for parent in parents
        for el in parent
        if isinstance(el.tag, str) and _local(el.tag)[1] in ("item", "entry")
    ]
    title_el = _child(channel, "title") if channel is not None else None
    feed_title = clean_title(_markup(title_el)) if title_el is not None else ""
    entries = []
    for item in items:
        entry = _xml_entry(item, base_url, summary_length)
        if entry is not None:
            entries.append(entry)
    return ParsedFeed(title=feed_title, entries=entries)


def xml_root(data: bytes) -> etree._Element:
    """Parse UTF-8 XML safely: strictly, else after repairing what browsers forgive.

    Documents that declare entities are refused before lxml sees them; lxml is
    also told never to expand entities, load a DTD or use the network.
    """
    prolog_end = _PROLOG_END.search(data)
    if prolog_end and b"<!ENTITY" in data[: prolog_end.start()]:
        raise FeedParseError(
            "refused: the document declares its own XML entities "
            "(a possible entity-expansion or external-entity attack)"
        )
    try:
        return etree.fromstring(data, _parser(recover=False))
    except etree.XMLSyntaxError as exc:
        first_error = exc
    text = data.decode("utf-8", errors="replace")
    text = _CONTROL.sub("", text)
    text = _NAMED_ENTITY.sub(_entity_to_ref, text)
    text = _BARE_AMP.sub("&amp;", text)
    text = _UNCLOSED_VOID.sub(r"<\1\2/>", text)
    try:
        root = etree.fromstring(text.encode("utf-8"), _parser(recover=True))
    except etree.XMLSyntaxError:
        root = None
    if root is None:
        raise FeedParseError(f"not readable XML: {first_error}")
    return root


def _parser(*, recover: bool) -> etree.XMLParser:
    # A fresh parser per document: lxml parsers must not be shared between threads.
    return etree.XMLParser(
        encoding="utf-8",
        recover=recover,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _entity_to_ref(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _XML_ENTITIES:
        return match.group(0)
    code = name2codepoint.get(name)
    return f"&#{code};" if code else f"&amp;{name};"


def _local(tag: str) -> tuple[str, str]:
    if tag[:1] == "{":
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    for el in parent:
        if isinstance(el.tag, str) and _local(el.tag)[1] == name:
            return el
    return None


def _markup(el: etree._Element) -> str:
    """An element's content as markup: its text, or its children serialised (XHTML content)."""
    if len(el) == 0:
        return el.text or ""
    parts = [el.text or ""]
    parts += [etree.tostring(child, encoding=str, with_tail=True) for child in el]
    return "".join(parts)


def _xml_entry(item: etree._Element, base_url: str, summary_length: int) -> Entry | None:
    found: dict[str, tuple[int, str]] = {}
    alternate = ""
    for child in item:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        ns, local = _local(tag)
        name = _FIELDS.get(local)
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
    get = {name: value for name, (_, value) in found.items()}
    published = None
    for name in _DATE_FIELDS:
        if name in get and (published := parse_date(get[name])) is not None:
            break
    return _entry(
        title=get.get("title", ""),
        link=alternate or get.get("link", "").strip(),
        guid=get.get("guid", "").strip(),
        body=get.get("summary") or get.get("content") or "",
        published=published,
        base_url=base_url,
        summary_length=summary_length,
    )


def _entry(
    *,
    title: str,
    link: str,
    guid: str,
    body: str,
    published: datetime | None,
    base_url: str,
    summary_length: int,
) -> Entry | None:
    if not link and guid.startswith(("http://", "https://")):
        link = guid
    if link and not link.startswith(("http://", "https://")) and base_url.startswith("http"):
        link = urljoin(base_url, link)
    if not link.startswith(("http://", "https://")):
        return None
    summary = summarise(body, summary_length) if body else ""
    clean = clean_title(title) if title else ""
    if not clean:
        # RSS lets an item have only a description; its start is the best headline.
        clean = summarise(body, _TITLE_FROM_BODY) if body else ""
    if not clean:
        return None
    return Entry(
        title=clean,
        url=link,
        key=canonical_url(link),
        summary=summary,
        published=published,
        guid=guid,
    )


def _parse_json(content: bytes, base_url: str, summary_length: int) -> ParsedFeed:
    try:
        doc = json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise FeedParseError(f"not a readable JSON feed: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise FeedParseError("not a readable JSON feed: no 'items' list")
    base = doc.get("home_page_url") if isinstance(doc.get("home_page_url"), str) else base_url
    entries = []
    for item in doc["items"]:
        if not isinstance(item, dict):
            continue
        text = {k: v for k, v in item.items() if isinstance(v, str)}
        entry = _entry(
            title=text.get("title", ""),
            link=(text.get("url") or text.get("external_url") or "").strip(),
            guid=str(item.get("id") or "").strip(),
            body=text.get("summary") or text.get("content_html") or text.get("content_text") or "",
            published=parse_date(text.get("date_published") or text.get("date_modified")),
            base_url=base or base_url,
            summary_length=summary_length,
        )
        if entry is not None:
            entries.append(entry)
    title = doc.get("title") if isinstance(doc.get("title"), str) else ""
    return ParsedFeed(title=clean_title(title), entries=entries)


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
