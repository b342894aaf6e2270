"""Clean titles, summaries and source names from whatever feeds put in them.

Every step runs in time linear in its input, whatever the input: markup goes
through libxml2's HTML parser (never through regular expressions that scan
back and forth), and the regular expressions left only ever look at a bounded
stretch of text. A feed's worst markup therefore costs what its size costs.

Titles and summaries are capped here, once, so every part of every message
shows the same text.
"""

from __future__ import annotations

import html
import re
import threading
from urllib.parse import urlsplit

from lxml import etree

from digest.collect.debris import DEBRIS_ROOM, strip_debris

TITLE_LIMIT = 300
SOURCE_LIMIT = 80
# Titles are cleaned from at most this much raw text: enough for any real headline
# with its markup, and it bounds the work a 9 MB title can cause.
_TITLE_RAW_LIMIT = 20_000
# The markdown and quote rules below look at no more than this much of a title.
_TITLE_WINDOW = 4 * TITLE_LIMIT

# Summaries are read from the start of their markup, this much at first.
_FIRST_CHUNK = 4_096
# What the HTML parser left behind (a tag escaped three times): linear, as a tag
# may not contain "<".
_TAG = re.compile(r"<[^<>]*>")
_MARKDOWN = re.compile(r"(\*\*|__|\*|`|~~)(?=\S)(.{1,200}?)(?<=\S)\1")
_STRAY_MARKERS = re.compile(r"(?:\*\*|__|~~|`)")
_QUOTES = "\"'\u201c\u201d\u2018\u2019\u00ab\u00bb"
# "BREAKING:", "UPDATE -", "EXCLUSIVE |" and the like before a headline, and the wire's
# "UPDATE 2-", "REFILE-", "RPT-" (one after another too): the digest says what is new
# by itself. Upper case only, so "Live music returns" is left alone.
_SHOUTED_TAG = re.compile(
    r"^(?:(?:BREAKING(?: NEWS)?|UPDATED?|EXCLUSIVE|JUST IN|WATCH|VIDEO|LIVE|REFILE|RPT|CORRECTED)"
    r"(?:\s*\d{1,2}\s*-\s*|\s*[:|\-\u2013\u2014]\s*|\s+(?=[A-Z0-9\"'\u201c])))+"
)
_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)]?(?=\s)")

# Invisible characters that only get in the way: C0 controls, zero-width spaces, BOMs,
# soft hyphens, bidirectional overrides, and lone surrogates (JSON allows them; no
# message could encode them). Vertical tab and form feed become spaces.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f\xad\u180e\u200b\u200e\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufffe\uffff\ud800-\udfff]+"
)
_BREAKS = re.compile("[\x0b\x0c]")
# C1 controls in text are Windows-1252 read as Latin-1 ("don\x92t"): give them back
# their meaning ("don’t"); the five that have none go.
_C1 = re.compile("[\x80-\x9f]")
_CP1252 = {c: bytes([c]).decode("cp1252", "ignore") or None for c in range(0x80, 0xA0)}
# Zero-width (non-)joiners carry meaning between letters (Persian, Indic scripts,
# emoji sequences) and none anywhere else.
_LOOSE_JOINER = re.compile(r"(?<![^\W_])[\u200c\u200d]+|[\u200c\u200d]+(?![^\W_])")
_EMOJI = "\U0001f000-\U0001faff\u2600-\u27bf"
_EMOJI_JOINER = re.compile(f"(?<=[{_EMOJI}])\u200d(?=[{_EMOJI}])")

# What browsers never show, dropped with its content.
_SKIP = ("script", "style", "noscript", "template", "iframe", "object", "svg", "head", "title")
# Tags that end a line on screen: a space keeps the words on either side apart,
# even when the tag is unmatched ("first</p>second").
_BLOCK_TAG = re.compile(r"<(?=/?(?:p|br|div|li|h[1-6]|tr|td|blockquote|hr)\b)", re.IGNORECASE)
_local = threading.local()


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment, whitespace folded, entities decoded, invisibles gone."""
    return _text_of(markup)


def _leading_text(markup: str, enough: int, *, unescape: bool) -> tuple[str, bool]:
    """The text of the start of `markup`, at least `enough` characters of it if there are.

    The prefix read grows fourfold until it holds enough text, so a long
    article costs what its first paragraphs cost and the worst case stays
    linear. The flag is True when the whole of `markup` was read.
    """
    size = max(_FIRST_CHUNK, 4 * enough)
    while True:
        whole = size >= len(markup)
        part = markup if whole else markup[:size]
        text = _text_of(html.unescape(part) if unescape else part)
        if whole or len(text) >= enough:
            return text, whole
        size *= 4


def _text_of(markup: str) -> str:
    markup = invisible_removed(markup)
    if "<" not in markup:
        return _folded(html.unescape(markup) if "&" in markup else markup)
    data = _BLOCK_TAG.sub(" <", markup).encode("utf-8", "replace")
    try:
        root = etree.fromstring(data, _parser())
    except etree.LxmlError:  # nothing libxml2 can call a document: no text in it either
        return ""
    if root is None:
        return ""
    etree.strip_elements(root, *_SKIP, with_tail=False)
    return _folded(invisible_removed(etree.tostring(root, method="text", encoding=str)))


def _folded(text: str) -> str:
    # str.split is many times faster than a regular expression on long text.
    return " ".join(text.split())


def invisible_removed(text: str) -> str:
    """`text` without control, zero-width and direction-override characters."""
    text = _BREAKS.sub(" ", _INVISIBLE.sub("", text))
    if _C1.search(text):
        text = text.translate(_CP1252)
    if "\u200c" in text or "\u200d" in text:
        text = _LOOSE_JOINER.sub("", _EMOJI_JOINER.sub("\x00", text)).replace("\x00", "\u200d")
    return text


def _parser() -> etree.HTMLParser:
    # One parser per thread: lxml parsers must not be shared between threads.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.HTMLParser(
            encoding="utf-8",
            recover=True,
            no_network=True,
            remove_comments=True,
            remove_pis=True,
            default_doctype=False,
            compact=True,
        )
    return parser


def clean_title(raw: str) -> str:
    """A headline as a reader should see it: no tags, entities, markdown or wrapping quotes.

    At most TITLE_LIMIT characters, cut at a word with an ellipsis.
    """
    text = raw[:_TITLE_RAW_LIMIT]
    # Feeds double-escape often enough ("&amp;amp;", "&lt;b&gt;"): decode twice.
    for _ in range(2):
        text = html.unescape(text)
    text = html_to_text(text) if "<" in text else invisible_removed(text)
    text = _folded(_TAG.sub(" ", text))[:_TITLE_WINDOW]
    text = _MARKDOWN.sub(r"\2", text)
    text = _folded(_STRAY_MARKERS.sub("", text))
    while len(text) > 1 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    if text.count('"') % 2 == 1 and (text.startswith('"') or text.endswith('"')):
        text = text.strip('"').strip()
    text = _SHOUTED_TAG.sub("", text) or text
    return cut(text, TITLE_LIMIT)


def summarise(raw: str, limit: int) -> str:
    """Plain text of at most `limit` characters, cut at a sentence or else a word boundary.

    Feed debris goes first: "Read more" tails, bylines and wire datelines,
    text that is only a link.
    """
    # Enough text to cut at `limit` after the debris around it is gone.
    enough = limit + DEBRIS_ROOM
    text, whole = _leading_text(raw, enough, unescape="&lt;" in raw)
    return _cut_at_sentence(strip_debris(text, limit, whole=whole), limit)


def _cut_at_sentence(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut_text = text[: limit + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(cut_text)]
    if ends and ends[-1] >= limit // 2:
        return cut_text[: ends[-1]].strip()
    return cut(text, limit)


def cut(text: str, limit: int) -> str:
    """`text` if it fits, else its first words within `limit` characters and an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    space = head.rfind(" ", 0, limit)
    if space < limit // 2:
        space = limit - 1
    return head[:space].rstrip(" ,;:-\u2013\u2014") + "\u2026"


# Source names

# Between a publisher's name and a description of the feed: "BBC News - World",
# "NYT > World News", "Al Jazeera – Breaking News, ...", "News : NPR".
_NAME_SEPARATOR = re.compile(r"\s+[-\u2013\u2014|>\u00bb\u203a:\u00b7\u2022/~]+\s+|:\s+|\s+\|")
# Words that describe a feed, never name its publisher.
_GENERIC = frozenset(
    {
        *("home", "news", "latest", "top", "stories", "story", "headlines", "world"),
        *("breaking", "all", "articles", "posts", "blog", "feed", "rss", "rss2", "atom"),
        *("channel", "updates", "front", "page", "homepage", "main", "section", "topics"),
        *("index", "international", "national", "local", "recent", "new", "today"),
        *("and", "the", "en", "us", "uk"),
    }
)
# "NDTV News Search Records Found 1000": a search page's title after the name.
_SEARCH_TAIL = re.compile(
    r"(?:\s+News)?\s+Search\s+(?:Results?|Records?)\b.*$|\s+Records?\s+Found\b.*$",
    re.IGNORECASE,
)
_FEED_TAIL = re.compile(r"\s+(?:RSS|Atom)(?:\s+(?:Feeds?|Channel))?$", re.IGNORECASE)
_NON_ALNUM = re.compile(r"[\W_]+")
_HOST_PREFIXES = ("www.", "feeds.", "feed.", "rss.", "m.", "mobile.", "api.", "edition.")


def source_name(feed_title: str, feed_url: str) -> str:
    """The publisher's name as a reader would say it, from a feed's title and address.

    "Al Jazeera – Breaking News, World News and Video from Al Jazeera" reads
    "Al Jazeera"; "NYT > World News" reads "NYT"; "BBC News - World" reads
    "BBC News". The part that spells the feed's domain wins ("World News |
    The Guardian" on theguardian.com); else the first part that is not a
    description. Without a usable title, the host name.
    """
    host = _host(feed_url)
    brand = _brand(host)
    title = clean_title(feed_title) if feed_title else ""
    parts = [p.strip(" ,;-") for p in _NAME_SEPARATOR.split(title)]
    parts = [_FEED_TAIL.sub("", _SEARCH_TAIL.sub("", p)).strip() for p in parts]
    squashed = [_NON_ALNUM.sub("", p).lower() for p in parts]
    for wanted in (brand, f"the{brand}"):
        if brand and wanted in squashed:
            return cut(parts[squashed.index(wanted)], SOURCE_LIMIT)
    # "AllAfrica News" on allafrica.com, "The National" on thenationalnews.com; a short
    # brand ("al", "dw") starts too many words to tell anything.
    if len(brand) >= 4:
        for part, flat in zip(parts, squashed, strict=True):
            if len(part.split()) <= 4 and (
                flat.startswith(brand) or (len(flat) >= 6 and brand.startswith(flat))
            ):
                return cut(part, SOURCE_LIMIT)
    parts = [p for p in parts if p and not _is_generic(p)]
    return cut(parts[0], SOURCE_LIMIT) if parts else host or cut(title, SOURCE_LIMIT)


def _is_generic(part: str) -> bool:
    words = _NON_ALNUM.sub(" ", part).lower().split()
    return all(w in _GENERIC for w in words)


def _host(url: str) -> str:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
    return host.removeprefix("www.")


def _brand(host: str) -> str:
    """The name part of a host: "feeds.bbci.co.uk" -> "bbci", "aljazeera.com" -> "aljazeera"."""
    while host.startswith(_HOST_PREFIXES):
        host = host.split(".", 1)[1]
    labels = host.split(".")
    if len(labels) < 2 or all(label.isdigit() for label in labels):
        return ""
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return labels[-3]
    return labels[-2]


_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "gov", "ac", "edu", "ne", "or", "go"})
