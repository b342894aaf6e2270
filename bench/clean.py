"""Benchmark: text cleaning at collection, against the implementation it replaced.

    python bench/clean.py [--feeds ../shared/data/real-feeds] [--full-baseline]

1. Hostile markup from issue 16, each at two sizes (n and 4n): cleaning that
   is linear takes about 4x as long on the bigger one, quadratic cleaning 16x.
   The baseline is the previous `digest/collect/clean.py` (html.parser and a
   tag regular expression), copied below and run in this same process.
   The baseline runs at smaller sizes, and the 600 KB `<!--` description of
   issue 16 on the new code only: at the issue's sizes the baseline needs
   minutes (pass --full-baseline to wait for them).
2. Per-item cost on real feeds: every item of the feeds in --feeds, its title
   and summary cleaned by both implementations; microseconds per item and the
   ratio new/baseline.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.collect.clean import clean_title, summarise

SUMMARY_LENGTH = 300  # DIGEST_SUMMARY_LENGTH's default

# The baseline: digest/collect/clean.py before this change, unchanged.

_WS = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>")
_MARKDOWN = re.compile(r"(\*\*|__|\*|`|~~)(?=\S)(.+?)(?<=\S)\1")
_STRAY_MARKERS = re.compile(r"(?:\*\*|__|~~|`)")
_QUOTES = "\"'\u201c\u201d\u2018\u2019\u00ab\u00bb"
_SHOUTED_TAG = re.compile(
    r"^(?:BREAKING(?: NEWS)?|UPDATED?|EXCLUSIVE|JUST IN|WATCH|VIDEO|LIVE)"
    r"(?:\s*[:|\-\u2013\u2014]\s*|\s+(?=[A-Z0-9\"'\u201c]))"
)
_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)]?(?=\s)")


class _TextExtractor(HTMLParser):
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


def old_html_to_text(markup: str) -> str:
    if "<" not in markup and "&" not in markup:
        return _WS.sub(" ", markup).strip()
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return _WS.sub(" ", "".join(parser.parts)).strip()


def old_clean_title(raw: str) -> str:
    text = raw
    for _ in range(2):
        text = html.unescape(text)
    text = old_html_to_text(text) if "<" in text else text
    text = _TAG.sub(" ", text)
    text = _MARKDOWN.sub(r"\2", text)
    text = _STRAY_MARKERS.sub("", text)
    text = _WS.sub(" ", text).strip()
    while len(text) > 1 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    if text.count('"') % 2 == 1 and (text.startswith('"') or text.endswith('"')):
        text = text.strip('"').strip()
    return _SHOUTED_TAG.sub("", text) or text


def old_summarise(raw: str, limit: int) -> str:
    text = old_html_to_text(html.unescape(raw) if "&lt;" in raw else raw)
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


# Measuring


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def _summary_old(s: str) -> str:
    return old_summarise(s, SUMMARY_LENGTH)


def _summary_new(s: str) -> str:
    return summarise(s, SUMMARY_LENGTH)


# (name, unit, n for the baseline, n for digest, baseline, digest). The baseline's n is
# smaller so the bench ends within a minute; issue 16 quotes the bigger sizes.
HOSTILE: list[tuple[str, str, int, int, Callable[[str], object], Callable[[str], object]]] = [
    ('"<" in a title (tag regex)', "<", 5_000, 20_000, lambda s: _TAG.sub(" ", s), clean_title),
    ('"<" in a title (whole title)', "<", 5_000, 20_000, old_clean_title, clean_title),
    ('"<" in a summary', "<", 5_000, 20_000, _summary_old, _summary_new),
    ('"<!--" in a summary', "<!--", 2_500, 40_000, _summary_old, _summary_new),
    ('"<a " in a summary', "<a ", 1_000, 40_000, _summary_old, _summary_new),
    ('"`a " in a title (markdown)', "`a ", 1_250, 20_000, old_clean_title, clean_title),
    ("quotes around a title", '"', 20_000, 20_000, old_clean_title, clean_title),
]


def _growth(fn: Callable[[str], object], unit: str, n: int, repeat: int) -> tuple[float, float]:
    small, big = unit * n, unit * (4 * n)
    return timed(lambda: fn(small), repeat), timed(lambda: fn(big), repeat)


def bench_hostile(full_baseline: bool) -> None:
    print("Hostile input at n and 4n (seconds; growth 4n/n: ~4 linear, ~16 quadratic, ~1 capped)")
    print(
        f"{'input':30} {'n':>6} {'base n':>7} {'base 4n':>7} {'growth':>6} {'new':>7}"
        f" {'base/new':>8} | {'n':>6} {'new n':>7} {'new 4n':>7} {'growth':>6}"
    )
    for name, unit, n_old, n_new, old, new in HOSTILE:
        if full_baseline:  # issue 16's sizes: 20,000 and 80,000 "<"; 40,000 "<!--"
            n_old = {"<": 20_000, "<!--": 10_000}.get(unit, n_old)
        old_small, old_big = _growth(old, unit, n_old, 1)
        same = timed(lambda new=new, text=unit * (4 * n_old): new(text), 5)
        new_small, new_big = _growth(new, unit, n_new, 5)
        print(
            f"{name:30} {n_old:>6} {old_small:7.3f} {old_big:7.3f} {old_big / old_small:6.1f}"
            f" {same:7.4f} {old_big / same:7.0f}x | {n_new:>6} {new_small:7.4f} {new_big:7.4f}"
            f" {new_big / new_small:6.1f}"
        )
    flood = "<!--" * 150_000
    new_time = timed(lambda: summarise(flood, SUMMARY_LENGTH), 3)
    line = f'Issue 16\'s 600 KB description ("<!--" x 150,000): new {new_time:.3f} s'
    if full_baseline:
        old_time = timed(lambda: old_summarise(flood, SUMMARY_LENGTH))
        line += f", baseline {old_time:.1f} s ({old_time / new_time:.0f}x)"
    else:
        line += "; baseline skipped (minutes; --full-baseline runs it)"
    print(line)
    title = "word " * 1_800_000
    new_time, old_time = timed(lambda: clean_title(title), 3), timed(lambda: old_clean_title(title))
    print(
        f"A 9 MB title: new {new_time:.4f} s, {len(clean_title(title))} characters kept;"
        f" baseline {old_time:.3f} s, {len(old_clean_title(title)):,} characters kept"
    )


def real_items(folder: Path) -> list[tuple[str, str]]:
    """(title, body markup) of every item, read the way feeds give them."""
    items = []
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
    for path in sorted(folder.glob("*.xml")):
        root = etree.fromstring(path.read_bytes(), parser)
        if root is None:
            continue
        for item in root.iter("{*}item", "{*}entry"):
            fields: dict[str, str] = {}
            for child in item:
                if not isinstance(child.tag, str):
                    continue
                local = etree.QName(child).localname
                text = child.text or ""
                if len(child):
                    text += "".join(etree.tostring(c, encoding=str) for c in child)
                fields.setdefault(local, text)
            body = fields.get("description") or fields.get("summary") or fields.get("encoded")
            items.append((fields.get("title", ""), body or fields.get("content", "")))
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_bytes())
        if isinstance(doc, dict) and isinstance(doc.get("items"), list) and "version" in doc:
            for it in doc["items"]:
                body = it.get("summary") or it.get("content_html") or it.get("content_text") or ""
                items.append((it.get("title", ""), body))
    return items


def bench_real(folder: Path) -> None:
    items = real_items(folder)
    if not items:
        print(f"\nNo feed items found in {folder}")
        return
    sizes = [len(t) + len(b) for t, b in items]

    def run(title_fn: Callable[[str], str], summary_fn: Callable[[str, int], str]) -> None:
        for title, body in items:
            title_fn(title)
            summary_fn(body, SUMMARY_LENGTH)

    old = statistics.median(timed(lambda: run(old_clean_title, old_summarise)) for _ in range(5))
    new = statistics.median(timed(lambda: run(clean_title, summarise)) for _ in range(5))
    per_old, per_new = old / len(items) * 1e6, new / len(items) * 1e6
    print(
        f"\nReal feeds ({folder}): {len(items)} items, markup median "
        f"{statistics.median(sizes):,.0f} B, max {max(sizes):,} B"
    )
    print(
        f"  per item (title + summary): baseline {per_old:.0f} us, new {per_new:.0f} us, "
        f"new/baseline {per_new / per_old:.2f}"
    )


def main() -> None:
    default = Path(__file__).resolve().parent.parent.parent.parent / "shared/data/real-feeds"
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feeds", type=Path, default=default)
    ap.add_argument("--full-baseline", action="store_true")
    args = ap.parse_args()
    bench_hostile(args.full_baseline)
    bench_real(args.feeds)


if __name__ == "__main__":
    main()
