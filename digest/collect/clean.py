"""Clean titles and summaries from whatever markup feeds put in them."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_WS = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>")
_MARKDOWN = re.compile(r"(\*\*|__|\*|`|~~)(?=\S)(.+?)(?<=\S)\1")
_STRAY_MARKERS = re.compile(r"(?:\*\*|__|~~|`)")
_QUOTES = "\"'\u201c\u201d\u2018\u2019\u00ab\u00bb"
# "BREAKING:", "UPDATE -", "EXCLUSIVE |" and the like before a headline: the digest
# says what is new by itself. Upper case only, so "Live music returns" is left alone.
_SHOUTED_TAG = re.compile(
    r"^(?:BREAKING(?: NEWS)?|UPDATED?|EXCLUSIVE|JUST IN|WATCH|VIDEO|LIVE)"
    r"(?:\s*[:|\-\u2013\u2014]\s*|\s+(?=[A-Z0-9\"'\u201c]))"
)
_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)]?(?=\s)")


class _TextExtractor(HTMLParser):
    """Collects text, dropping what browsers never show (scripts, styles)."""

    _SKIP = frozenset(
        {"script", "style", "noscript", "template", "iframe", "object", "svg", "head"}
    )
    _BLOCK = frozenset(
        {"p", "br", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment, whitespace folded, entities decoded."""
    if "<" not in markup and "&" not in markup:
        return _WS.sub(" ", markup).strip()
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return _WS.sub(" ", "".join(parser.parts)).strip()


def clean_title(raw: str) -> str:
    """A headline as a reader should see it: no tags, entities, markdown or wrapping quotes."""
    text = raw
    # Feeds double-escape often enough ("&amp;amp;", "&lt;b&gt;"): decode twice.
    for _ in range(2):
        text = html.unescape(text)
    text = html_to_text(text) if "<" in text else text
    text = _TAG.sub(" ", text)
    text = _MARKDOWN.sub(r"\2", text)
    text = _STRAY_MARKERS.sub("", text)
    text = _WS.sub(" ", text).strip()
    while len(text) > 1 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    if text.count('"') % 2 == 1 and (text.startswith('"') or text.endswith('"')):
        text = text.strip('"').strip()
    return _SHOUTED_TAG.sub("", text) or text


def summarise(raw: str, limit: int) -> str:
    """Plain text of at most `limit` characters, cut at a sentence or else a word boundary."""
    text = html_to_text(html.unescape(raw) if "&lt;" in raw else raw)
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(cut)]
    if ends and ends[-1] >= limit // 2:
        return cut[: ends[-1]].strip()
    space = cut.rfind(" ", 0, limit)
    if space < limit // 2:
        space = limit - 1
    return cut[:space].rstrip(" ,;:-\u2013\u2014") + "\u2026"
