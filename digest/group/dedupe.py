"""Near-duplicates: the same report carried by several outlets becomes one item.

Two articles are the same report when their titles share most of their
weighted words (cosine >= TITLE_SAME), or when their titles overlap
(>= TITLE_NEAR) and, both having summaries, title plus summary agree
(>= TEXT_SAME): a
reworded headline over the same wire copy. The thresholds are strict on
purpose: a wrong merge hides a story, a missed one only shows it twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import connected_components

from digest.group.vectors import pairs_above, tfidf
from digest.models import Article

TITLE_SAME = 0.6
TITLE_NEAR = 0.3
SUMMARY_SAME = 0.35


@dataclass(frozen=True, slots=True)
class Item:
    """One report: indices of its articles, the first (earliest) being the one shown."""

    members: tuple[int, ...]

    @property
    def first(self) -> int:
        return self.members[0]


def near_duplicates(articles: list[Article]) -> list[Item]:
    """Items in order of their first article; every article is in exactly one."""
    n = len(articles)
    if n == 0:
        return []
    near = pairs_above(tfidf([a.title for a in articles]), TITLE_NEAR)
    same = near.data >= TITLE_SAME
    summarised = np.array([bool(a.summary.strip()) for a in articles])
    both = summarised[near.row] & summarised[near.col]
    if both.any():
        summaries = tfidf([a.summary for a in articles])
        rows, cols = near.row[both], near.col[both]
        agree = np.asarray(summaries[rows].multiply(summaries[cols]).sum(axis=1)).ravel()
        same[both] |= agree >= SUMMARY_SAME
    graph = near.copy()
    graph.data = same.astype(np.int8)
    graph.eliminate_zeros()
    _, labels = connected_components(graph, directed=False)

    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    items = [
        Item(tuple(sorted(members, key=lambda i: (articles[i].published, articles[i].key))))
        for members in groups.values()
    ]
    return sorted(items, key=lambda item: item.first)
