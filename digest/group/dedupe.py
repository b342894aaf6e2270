"""Stories: one event told by several outlets or in several wordings becomes one item.

Two articles tell the same story when their titles share most of their
weighted words (cosine >= TITLE_SAME), or when their titles overlap
(>= TITLE_NEAR) and either their summaries agree (>= SUMMARY_SAME) or their
meaning does (embedding cosine >= MEANING_SAME): a reworded headline over the
same wire copy. Titles carrying different numbers are never the same story
(Part I and Part II, Week 2 and Week 3, rc1 and rc2). The thresholds are
strict on purpose: a wrong merge hides a story, a missed one only shows it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from digest.group.text import numbers, ordinals
from digest.group.vectors import pairs_above
from digest.models import Article

TITLE_SAME = 0.6
TITLE_NEAR = 0.3
SUMMARY_SAME = 0.35
MEANING_SAME = 0.85
CHUNK = 2048  # pairs compared at a time: their two gathered embedding blocks stay in cache


@dataclass(frozen=True, slots=True)
class Item:
    """One report: indices of its articles, the first being the one shown: the fullest
    (with a summary, dated), then the earliest."""

    members: tuple[int, ...]

    @property
    def first(self) -> int:
        return self.members[0]


def stories(
    articles: list[Article],
    meaning: np.ndarray,
    titles: sp.csr_matrix,
    summaries: sp.csr_matrix,
) -> list[Item]:
    """Items in order of their first article; every article is in exactly one.

    `meaning` holds the articles' unit embeddings, `titles` and `summaries`
    the TF-IDF rows of their titles and summaries.
    """
    n = len(articles)
    if n == 0:
        return []
    near = pairs_above(titles, TITLE_NEAR)
    same = near.data >= TITLE_SAME
    unsure = np.flatnonzero(~same)
    for start in range(0, len(unsure), CHUNK):
        pairs = unsure[start : start + CHUNK]
        agree = np.einsum("ij,ij->i", meaning[near.row[pairs]], meaning[near.col[pairs]])
        same[pairs] = agree >= MEANING_SAME
    summarised = np.array([bool(a.summary.strip()) for a in articles])
    both = summarised[near.row] & summarised[near.col]
    if both.any():
        rows, cols = near.row[both], near.col[both]
        agree = np.asarray(summaries[rows].multiply(summaries[cols]).sum(axis=1)).ravel()
        same[both] |= agree >= SUMMARY_SAME
    same &= ~_numbered_apart(articles, near, same)
    graph = near.copy()
    graph.data = same.astype(np.int8)
    graph.eliminate_zeros()
    _, labels = connected_components(graph, directed=False)
    # Each item's members fullest, then earliest, first: sorted by label, then by that.
    rank = np.empty(n, dtype=np.int64)
    rank[sorted(range(n), key=lambda i: _fullest_first(articles[i]))] = np.arange(n)
    order = np.lexsort((rank, labels))
    ends = [*(np.flatnonzero(np.diff(labels[order])) + 1).tolist(), n]
    members = order.tolist()
    items = [Item(tuple(members[a:b])) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    return sorted(items, key=lambda item: item.first)


def fullness(article: Article) -> tuple[bool, bool, bool]:
    """What makes one report fuller than another: a summary, then a date
    (undated pages are rarely news), then a whole title (not "Zimmerman poses
    for pictures with supporters at ...")."""
    whole = not article.title.rstrip().endswith(("...", "…"))
    return (bool(article.summary.strip()), article.dated, whole)


def _fullest_first(article: Article) -> tuple[bool, bool, bool, datetime, str]:
    """A bare title never stands for a story one of its copies tells with a summary."""
    summarised, dated, whole = fullness(article)
    return (not summarised, not dated, not whole, article.published, article.key)


def _numbered_apart(articles: list[Article], near: sp.coo_matrix, same: np.ndarray) -> np.ndarray:
    """Which `same` pairs carry different numbers, or different ordinals, in their
    titles: different items.

    One title without a number (an ordinal), or with some of the other's, is a
    copy. Only titles in a `same` pair are read: numbers() is a regex pass per title.
    """
    rows, cols = near.row, near.col
    ends = np.unique(np.concatenate([rows[same], cols[same]])).tolist()
    counted = {i: (numbers(articles[i].title), ordinals(articles[i].title)) for i in ends}
    kinds: dict[tuple[frozenset[str], frozenset[str]], int] = {}
    kind = np.zeros(len(articles), dtype=np.int64)
    for i, found in counted.items():
        kind[i] = kinds.setdefault(found, len(kinds))
    apart = np.zeros(len(same), dtype=bool)
    differ = np.flatnonzero(same & (kind[rows] != kind[cols]))
    ends_of = zip(rows[differ].tolist(), cols[differ].tolist(), strict=True)
    for pair, (first, second) in zip(differ.tolist(), ends_of, strict=True):
        apart[pair] = any(
            not (one <= other or other <= one)
            for one, other in zip(counted[first], counted[second], strict=True)
        )
    return apart
