"""Group: articles into themes, each with a lead article and a readable label.

`group(articles, options)` is the one entry point. The steps, each in its own
module: operator topics pin matching articles (topics.py); near-duplicates
become one report listing every outlet (dedupe.py); reports are clustered
into themes (cluster.py), labelled (label.py) and ranked, with the caps
marking what is rendered (rank.py). The same input always gives the same
themes: articles are put in a fixed order first and every step is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from digest.config import Settings
from digest.group.cluster import cluster
from digest.group.dedupe import Item, near_duplicates
from digest.group.label import Labeller
from digest.group.rank import OTHER_NEWS, apply_caps, theme_rank
from digest.group.topics import Topic, pin
from digest.group.vectors import article_vectors
from digest.models import Article, Theme

LABEL_LENGTH = 80

__all__ = ["OTHER_NEWS", "GroupOptions", "Topic", "group"]


@dataclass(frozen=True)
class GroupOptions:
    """What an operator sets: DIGEST_MAX_THEMES, DIGEST_MAX_ARTICLES_PER_THEME, DIGEST_TOPICS."""

    max_themes: int = 0
    max_articles_per_theme: int = 0
    topics: tuple[Topic, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, settings: Settings) -> GroupOptions:
        return cls(
            max_themes=settings.max_themes,
            max_articles_per_theme=settings.max_articles_per_theme,
            topics=tuple(Topic(name, tuple(words)) for name, words in settings.topics.items()),
        )


def group(articles: list[Article], options: GroupOptions | None = None) -> list[Theme]:
    """Themes in rank order (most widely carried first), singletons last as 'Other news'."""
    # The matrices here are small enough that BLAS threads cost more than they
    # save (measured: 2.8 s on one thread, 3.4 s and twice the CPU on two).
    with threadpool_limits(limits=1, user_api="blas"):
        return _group(articles, options or GroupOptions())


def _group(articles: list[Article], options: GroupOptions) -> list[Theme]:
    ordered = sorted(articles, key=lambda a: (a.published, a.key, a.source, a.title))
    pinned, rest = pin(ordered, options.topics)
    themes = [_theme(name, members) for name, members in pinned]
    loose: list[Article] = []
    for members in _themes(rest):
        if len(members) > 1:
            themes.append(Theme(label="", articles=members))
        else:
            loose.extend(members)
    labeller = Labeller([a.title for a in ordered])
    position = {a.key: i for i, a in enumerate(ordered)}
    themes = [
        t if t.label else t.model_copy(update={"label": _label(labeller, t, position)})
        for t in themes
    ]
    themes.sort(key=theme_rank)
    if loose:
        themes.append(Theme(label=OTHER_NEWS, articles=sorted(loose, key=_newest_first)))
    return apply_caps(themes, options.max_themes, options.max_articles_per_theme)


def _themes(articles: list[Article]) -> list[list[Article]]:
    """Articles grouped into themes; each inner list holds the theme's articles."""
    if not articles:
        return []
    texts = article_vectors(articles)
    items = near_duplicates(articles)
    reports = np.empty(len(articles), dtype=np.int64)
    for number, item in enumerate(items):
        reports[list(item.members)] = number
    labels = cluster(texts, reports)
    by_label: dict[int, list[Item]] = {}
    for item in items:
        by_label.setdefault(int(labels[item.first]), []).append(item)
    return [_fold(articles, theme_items, texts) for theme_items in by_label.values()]


def _fold(articles: list[Article], items: list[Item], vectors: sp.csr_matrix) -> list[Article]:
    """One theme's articles: lead first, the rest newest first, each report's copies after it.

    The lead is the report carried by the most outlets; among equals, the one
    closest to the theme's centre (the most typical), then the latest.
    A report's first article names every other outlet in `also_reported_by`;
    the copies stay in the list with `duplicate_of` set, for the JSON preview.
    """
    firsts = [item.first for item in items]
    centre = np.asarray(vectors[firsts].mean(axis=0)).ravel()
    typical = vectors[firsts] @ centre

    def lead_rank(position: int) -> tuple:
        item = items[position]
        sources = len({articles[i].source for i in item.members})
        return (sources, round(float(typical[position]), 6), articles[item.first].published)

    lead = items[max(range(len(items)), key=lead_rank)]
    rest = [i for i in items if i is not lead]
    rest.sort(key=lambda i: _newest_first(articles[i.first]))
    out: list[Article] = []
    for item in [lead, *rest]:
        first = articles[item.first]
        others = dict.fromkeys(
            articles[i].source for i in item.members[1:] if articles[i].source != first.source
        )
        out.append(first.model_copy(update={"also_reported_by": tuple(others)}))
        out.extend(
            articles[i].model_copy(update={"duplicate_of": first.key}) for i in item.members[1:]
        )
    return out


def _theme(label: str, articles: list[Article]) -> Theme:
    """A pinned topic's theme: its articles' own near-duplicates folded."""
    texts = article_vectors(articles)
    return Theme(label=label, articles=_fold(articles, near_duplicates(articles), texts))


def _label(labeller: Labeller, theme: Theme, position: dict[str, int]) -> str:
    reports = [position[a.key] for a in theme.articles if a.duplicate_of is None]
    words = labeller.label(reports)
    if words:
        return words
    title = " ".join(theme.lead.title.split())  # no distinctive words: the lead's title
    return title if len(title) <= LABEL_LENGTH else title[: LABEL_LENGTH - 1] + "…"


def _newest_first(article: Article) -> tuple:
    return (-article.published.timestamp(), article.key)
