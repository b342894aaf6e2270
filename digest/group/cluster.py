"""Themes: average-linkage clustering of reports, with no fixed number of themes.

Each report is a blend of two views of its words: TF-IDF (exact words and
names) and LSA, a truncated SVD of the same matrix that lets words which travel
together ("Titanfall", "Xbox") count as related. Average linkage merges two
groups while their mean pairwise similarity is at least MIN_SIMILARITY, so the
number of themes follows the day's news. Weights and threshold were tuned on
half the labelled stories and checked on the other half (bench/group.py).

Up to MAX_EXACT reports are clustered exactly. Beyond that, reports that are
already very close are first pooled by their sparse neighbours (never an
n-by-n matrix), and the pools are clustered exactly by their mean vectors.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import squareform
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize

LSA_WEIGHT = 0.8
LSA_HALF_AT = 200
MIN_SIMILARITY = 0.2
MAX_EXACT = 4000
MAX_DIMENSIONS = 150
POOL_FLOORS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
BLOCK = 1024


def cluster(matrix: sp.csr_matrix, reports: np.ndarray) -> np.ndarray:
    """A theme number for each row of a TF-IDF matrix (one row per article).

    `reports` numbers each article's near-duplicate report: on days too big
    to cluster article by article, reports are clustered as units.
    """
    n = matrix.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    words = normalize(matrix).astype(np.float32)
    topics = _lsa(words)
    # Few articles say little about which words travel together: lean on the
    # words themselves until there are some hundreds.
    weight = LSA_WEIGHT * n / (n + LSA_HALF_AT)
    pools = _pool(words, topics, reports, weight)
    count = int(pools.max()) + 1
    # Pools with no close neighbour at all beyond MAX_EXACT stay alone: the
    # largest pools are clustered, so memory stays bounded whatever the day.
    sizes = np.bincount(pools, minlength=count)
    linked = np.sort(np.argsort(-sizes, kind="stable")[:MAX_EXACT])
    position = np.full(count, -1)
    position[linked] = np.arange(len(linked))
    kept = position[pools] >= 0
    members = sp.csr_matrix(
        (np.ones(kept.sum(), dtype=np.float32), (position[pools[kept]], np.flatnonzero(kept))),
        shape=(len(linked), n),
    )
    members = normalize(members, norm="l1")  # each pool is the mean of its articles
    labels = np.empty(count, dtype=np.int64)
    labels[linked] = _average_linkage(members @ words, members @ topics, weight)
    alone = np.setdiff1d(np.arange(count), linked)
    labels[alone] = labels[linked].max() + 1 + np.arange(len(alone))
    return labels[pools]


def _lsa(words: sp.csr_matrix) -> np.ndarray:
    """Unit vectors in a space of about sqrt(n) topics.

    Only terms used by two articles or more can relate words to each other,
    so the rest are left out of the SVD (most word pairs occur once).
    """
    n = words.shape[0]
    shared = np.flatnonzero(np.diff(words.tocsc().indptr) >= 2)
    dimensions = min(MAX_DIMENSIONS, round(n**0.5), n - 1, len(shared) - 1)
    if dimensions < 2:
        return np.zeros((n, 0), dtype=np.float32)
    svd = TruncatedSVD(dimensions, algorithm="randomized", n_iter=5, random_state=0)
    return normalize(svd.fit_transform(words[:, shared])).astype(np.float32)


def _similarity(words: sp.csr_matrix, topics: np.ndarray, rows: slice, weight: float) -> np.ndarray:
    word_part = (words[rows] @ words.T).toarray()
    if topics.shape[1] == 0:
        return word_part
    topic_part = topics[rows] @ topics.T
    return weight * topic_part + (1 - weight) * word_part


def _pool(
    words: sp.csr_matrix, topics: np.ndarray, reports: np.ndarray, weight: float
) -> np.ndarray:
    """Pool numbers: each article alone when few, else reports, else close reports."""
    n = words.shape[0]
    if n <= MAX_EXACT:
        return np.arange(n)
    count = int(reports.max()) + 1
    if count <= MAX_EXACT:
        return reports
    members = normalize(
        sp.csr_matrix((np.ones(n, dtype=np.float32), (reports, np.arange(n))), shape=(count, n))
    )
    words = normalize(members @ words).astype(np.float32)
    topics = normalize(members @ topics).astype(np.float32)
    rows, cols, sims = [], [], []
    for start in range(0, count, BLOCK):
        block = _similarity(words, topics, slice(start, start + BLOCK), weight)
        r, c = np.nonzero(block >= POOL_FLOORS[-1])
        keep = c > r + start
        rows.append(r[keep] + start)
        cols.append(c[keep])
        sims.append(block[r[keep], c[keep]])
    row, col, sim = np.concatenate(rows), np.concatenate(cols), np.concatenate(sims)
    for floor in POOL_FLOORS:
        keep = sim >= floor
        graph = sp.coo_matrix((sim[keep], (row[keep], col[keep])), shape=(count, count))
        pools, labels = connected_components(graph, directed=False)
        if pools <= MAX_EXACT:
            break
    return labels[reports]


def _average_linkage(words: sp.csr_matrix, topics: np.ndarray, weight: float) -> np.ndarray:
    """Average linkage over all pairs, cut where mean similarity falls below the floor."""
    m = words.shape[0]
    if m < 2:
        return np.zeros(m, dtype=np.int64)
    similarity = _similarity(words, topics, slice(0, m), weight).astype(np.float64)
    distance = np.clip(1.0 - similarity, 0.0, 2.0, out=similarity)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    return fcluster(tree, t=1.0 - MIN_SIMILARITY, criterion="distance") - 1
