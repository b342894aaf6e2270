"""Drawing the day's themes: the steps behind `digest.group.group`, in order.

Operator topics pin their articles first; the rest too thin to place go to
the catch-all; the others are embedded, folded into stories, clustered into
themes, cleared of blogs' own streams (streams.py), labelled and ranked.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache, partial
from typing import TYPE_CHECKING

import numpy as np

from digest.group.cluster import Views, cluster, likeness
from digest.group.dedupe import Item, fullness, stories
from digest.group.embed import embed
from digest.group.label import Labeller
from digest.group.label_words import load_word_list
from digest.group.rank import ALSO_TODAY, apply_caps, theme_rank
from digest.group.streams import stream_sources
from digest.group.text import NOISE, unhashed, words
from digest.group.topics import pin
from digest.group.vectors import article_vectors
from digest.models import Article, Theme

if TYPE_CHECKING:
    from pathlib import Path

    from digest.group import GroupOptions

MIN_WORDS = 2  # fewer telling words than this ("About", "Home", a product name): too thin to place
MEANING_CHARS = 300  # the headline and the start of its summary say what an article is about


def draw(articles: list[Article], options: GroupOptions) -> list[Theme]:
    """Themes in rank order, the catch-all last, caps applied."""
    # The labels' word list loads on a spare thread while the articles are grouped
    # (measured: 0.4 s off a cold 20,000-headline run).
    with _collector_paused(), ThreadPoolExecutor(max_workers=1) as spare:
        return _draw(articles, options, spare.submit(load_word_list))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while grouping: it makes a few hundred thousand
    objects, freed by reference counting, and the collector's passes over the whole
    heap meanwhile cost a sixth of the time (0.5-0.8 s at 20,000 articles)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _draw(articles: list[Article], options: GroupOptions, word_list: Future[None]) -> list[Theme]:
    ordered = sorted(articles, key=lambda a: (a.published, a.key, a.source, a.title))
    pinned, rest = pin(ordered, options.topics)
    themes = [_theme(name, members, options.embedding_model) for name, members in pinned]
    thin = [_thin(a) for a in rest]
    loose = [a for a, t in zip(rest, thin, strict=True) if t]
    found: list[Theme] = []
    model = options.embedding_model
    drawn, streamed = _themes([a for a, t in zip(rest, thin, strict=True) if not t], model)
    loose.extend(streamed)
    for members in drawn:
        if len(members) > 1:
            found.append(Theme(label="", articles=members))
        else:
            loose.extend(members)
    found.sort(key=theme_rank)  # the widest carried themes choose their labels first
    word_list.result()
    labeller = Labeller([a.title for a in ordered])
    position = {a.key: i for i, a in enumerate(ordered)}
    for theme in found:
        label = _label(labeller, theme, position)
        if label:
            themes.append(theme.model_copy(update={"label": label}))
        else:  # headlines that share nothing an editor could name are no theme
            loose.extend(theme.articles)
    themes.sort(key=theme_rank)
    if loose:
        themes.append(Theme(label=ALSO_TODAY, articles=_copies_after(loose), catch_all=True))
    return apply_caps(themes, options.max_themes, options.max_articles_per_theme)


def _thin(article: Article) -> bool:
    """Too little text to say what it is about: it joins no theme on the strength of nothing."""
    return len(words(article.title)) + len(words(article.summary)) < MIN_WORDS


def _meaning(articles: list[Article], model: Path | None) -> np.ndarray:
    texts = [unhashed(f"{a.title} {a.summary}"[:MEANING_CHARS]) for a in articles]
    # Only the telling words: "the", "to" and "says" pull every headline together.
    return embed([" ".join([w for w in t.split() if _telling(w)]) for t in texts], model)


@lru_cache(maxsize=65536)
def _telling(word: str) -> bool:
    return word.lower().strip(_EDGES) not in NOISE


_EDGES = ".,:;!?'\"“”‘’()[]*"


def _themes(
    articles: list[Article], model: Path | None
) -> tuple[list[list[Article]], list[Article]]:
    """Articles grouped into themes (each inner list a theme's articles), and the
    articles of sources writing their own stream (streams.py), which join none."""
    if not articles:
        return [], []
    meaning = _meaning(articles, model)
    vectors = article_vectors(articles)
    # The topic model (LSA) inside Views.of runs in LAPACK and sparse products,
    # which let go of the interpreter: it takes the second core while stories fold.
    with ThreadPoolExecutor(max_workers=1) as beside:
        viewing = beside.submit(Views.of, vectors.both, meaning)
        items = stories(articles, meaning, vectors.titles, vectors.summaries)
        views = viewing.result()
    reports = np.empty(len(articles), dtype=np.int64)
    for number, item in enumerate(items):
        reports[list(item.members)] = number
    labels = cluster(views, reports)
    by_label: dict[int, list[Item]] = {}
    for item in items:
        by_label.setdefault(int(labels[item.first]), []).append(item)
    drawn = [[i for item in theme for i in item.members] for theme in by_label.values()]
    streams = stream_sources(articles, drawn, partial(likeness, views))
    if not streams:
        return [_fold(articles, theme, meaning) for theme in by_label.values()], []
    news: list[list[Item]] = []
    streamed: list[Article] = []
    for theme_items in by_label.values():
        kept = [i for i in theme_items if articles[i.first].source not in streams]
        if kept:
            news.append(kept)
        for item in theme_items:
            if articles[item.first].source in streams:
                streamed.extend(_fold(articles, [item], meaning))
    return [_fold(articles, theme, meaning) for theme in news], streamed


def _fold(articles: list[Article], items: list[Item], meaning: np.ndarray) -> list[Article]:
    """One theme's articles: lead first, the rest newest first, each story's copies after it.

    The lead is the most substantive report of the main story: carried by the
    most outlets, with a summary, dated (undated pages are rarely news); among
    equals, the one closest to the theme's centre (the most typical), then the
    latest. A story's first article names every other outlet in
    `also_reported_by`; the copies stay in the list with `duplicate_of` set,
    for the JSON preview.
    """
    firsts = [item.first for item in items]
    centre = meaning[firsts].mean(axis=0)
    typical = meaning[firsts] @ centre

    def lead_rank(position: int) -> tuple:
        item = items[position]
        first = articles[item.first]
        sources = len({articles[i].source for i in item.members})
        return (sources, fullness(first), round(float(typical[position]), 6), first.published)

    lead = items[max(range(len(items)), key=lead_rank)]
    rest = [i for i in items if i is not lead]
    rest.sort(key=lambda i: _newest_first(articles[i.first]))
    out: list[Article] = []
    for item in [lead, *rest]:
        first = articles[item.first]
        others = dict.fromkeys(
            articles[i].source for i in item.members[1:] if articles[i].source != first.source
        )
        # Copies only where something changes: at 20,000 articles copying costs seconds.
        out.append(first.replace(also_reported_by=tuple(others)) if others else first)
        out.extend(articles[i].replace(duplicate_of=first.key) for i in item.members[1:])
    return out


def _theme(label: str, articles: list[Article], model: Path | None) -> Theme:
    """A pinned topic's theme: its articles' own stories folded."""
    meaning = _meaning(articles, model)
    vectors = article_vectors(articles)
    items = stories(articles, meaning, vectors.titles, vectors.summaries)
    return Theme(label=label, articles=_fold(articles, items, meaning))


def _label(labeller: Labeller, theme: Theme, position: dict[str, int]) -> str:
    """The theme's label, or '' when its headlines share no run of words worth one."""
    # Every wording counts, copies too: two wordings of one story name it best.
    titles: dict[str, int] = {}
    for article in theme.articles:
        titles.setdefault(" ".join(article.title.lower().split()), position[article.key])
    return labeller.label(list(titles.values()))


def _copies_after(articles: list[Article]) -> list[Article]:
    """Dated reports newest first, then undated pages (their time is only when they were
    first seen, so they would all look newest), each folded copy right after its report."""
    firsts = sorted(
        (a for a in articles if a.duplicate_of is None),
        key=lambda a: (not a.dated, *_newest_first(a)),
    )
    copies: dict[str, list[Article]] = {}
    for article in articles:
        if article.duplicate_of is not None:
            copies.setdefault(article.duplicate_of, []).append(article)
    return [a for first in firsts for a in (first, *copies.get(first.key, ()))]


def _newest_first(article: Article) -> tuple:
    return (-article.published.timestamp(), article.key)
