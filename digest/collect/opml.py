"""OPML, the format feed readers exchange subscription lists in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING

from lxml import etree

from digest.collect.decode import to_utf8
from digest.collect.fetch import is_http
from digest.collect.xmlsafe import XMLError, xml_root
from digest.errors import OpmlError

if TYPE_CHECKING:
    from digest.db.feeds import FeedRepository


def read_opml(content: bytes) -> tuple[list[tuple[str, str]], list[str]]:
    """(url, title) of every feed in the outline, nested folders included, and what was skipped.

    Only http(s) feeds are taken: a `file:` source must be named by the operator
    directly, never arrive inside a list from elsewhere.
    """
    try:
        root = xml_root(to_utf8(content))
    except XMLError as exc:
        raise OpmlError(f"not a readable OPML file: {exc}") from None
    if not isinstance(root.tag, str) or root.tag.lower() != "opml":
        raise OpmlError(f"not an OPML file: the document is <{root.tag}>, not <opml>")
    feeds: dict[str, str] = {}
    skipped = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url:
            continue  # a folder
        if not is_http(url):
            skipped.append(url)
            continue
        title = (outline.get("title") or outline.get("text") or "").strip()
        feeds.setdefault(url, title)
    return list(feeds.items()), skipped


def write_opml(feeds: list[tuple[str, str]], title: str = "digest feeds") -> bytes:
    """An OPML 2.0 document listing the feeds."""
    opml = etree.Element("opml", version="2.0")
    head = etree.SubElement(opml, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(datetime.now(UTC))
    body = etree.SubElement(opml, "body")
    for url, name in feeds:
        etree.SubElement(
            body, "outline", type="rss", text=name or url, title=name or url, xmlUrl=url
        )
    return etree.tostring(opml, xml_declaration=True, encoding="utf-8", pretty_print=True)


def import_opml(
    feeds: FeedRepository,
    content: bytes,
    readable: Callable[[list[str]], dict[str, str | None]] | None = None,
) -> tuple[int, int, list[str], dict[str, str]]:
    """List every http(s) feed of an OPML file not listed yet.

    `readable(urls)` says, per new feed, why it cannot be read (None: it can); those
    are refused. Returns (added, already listed, skipped non-http sources, refused
    with their reasons); raises OpmlError.
    """
    found, skipped = read_opml(content)
    known = set(feeds.urls())
    new = [(url, title) for url, title in found if url not in known]
    problems = readable([url for url, _ in new]) if readable and new else {}
    refused = {url: why for url, why in problems.items() if why}
    for url, title in new:
        if url not in refused:
            feeds.add(url, title)
    return len(new) - len(refused), len(found) - len(new), skipped, refused
