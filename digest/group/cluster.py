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
MIN_SIMILARITY = 0.2
MAX_EXACT = 4000
MAX_DIMENSIONS = 150
POOL_FLOORS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
BLOCK = 1024


def cluster(matrix: sp.csr_matrix, reports: np.ndarray) -> np.ndarray:
    """A theme number for each row of a TF-IDF matrix (one row per article).

    `reports` numbers each article's near-duplicate report; articles of one
    report always share a theme.
    """
    n = matrix.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    words = normalize(matrix).astype(np.float32)
    topics = _lsa(words)
    pools = _pool(words, topics, reports)
    members = sp.csr_matrix(
        (np.ones(n, dtype=np.float32), (pools, np.arange(n))), shape=(pools.max() + 1, n)
    )
    members = normalize(members, norm="l1")  # each pool is the mean of its reports
    labels = _average_linkage(members @ words, members @ topics)
    return labels[pools]


def _lsa(words: sp.csr_matrix) -> np.ndarray:
    """Unit vectors in a space of about sqrt(n) topics (fewer words, fewer topics)."""
    n, vocabulary = words.shape
    dimensions = min(MAX_DIMENSIONS, round(n**0.5), n - 1, vocabulary - 1)
    if dimensions < 2:
        return np.zeros((n, 0), dtype=np.float32)
    svd = TruncatedSVD(dimensions, algorithm="randomized", n_iter=7, random_state=0)
    return normalize(svd.fit_transform(words)).astype(np.float32)


def _similarity(words: sp.csr_matrix, topics: np.ndarray, rows: slice) -> np.ndarray:
    word_part = (words[rows] @ words.T).toarray()
    if topics.shape[1] == 0:
        return word_part
    return LSA_WEIGHT * (topics[rows] @ topics.T) + (1 - LSA_WEIGHT) * word_part


def _pool(words: sp.csr_matrix, topics: np.ndarray, reports: np.ndarray) -> np.ndarray:
    """Pool numbers: each article alone when few, else reports, else close neighbours."""
    n = words.shape[0]
    if n <= MAX_EXACT:
        return np.arange(n)
    if reports.max() < MAX_EXACT:
        return reports
    # Graph over articles 0..n-1 plus one node per report (n + r), so that a
    # report's articles always land in the same pool.
    rows, cols, sims = [np.arange(n)], [n + reports], [np.ones(n, dtype=np.float32)]
    for start in range(0, n, BLOCK):
        block = _similarity(words, topics, slice(start, start + BLOCK))
        r, c = np.nonzero(block >= POOL_FLOORS[-1])
        keep = c > r + start
        rows.append(r[keep] + start)
        cols.append(c[keep])
        sims.append(block[r[keep], c[keep]])
    row, col, sim = np.concatenate(rows), np.concatenate(cols), np.concatenate(sims)
    size = n + reports.max() + 1
    for floor in POOL_FLOORS:
        keep = sim >= floor
        graph = sp.coo_matrix((np.ones(keep.sum()), (row[keep], col[keep])), shape=(size, size))
        count, labels = connected_components(graph, directed=False)
        if count - (size - n - len(np.unique(reports))) <= MAX_EXACT:
            break
    _, pools = np.unique(labels[:n], return_inverse=True)
    return pools


def _average_linkage(words: sp.csr_matrix, topics: np.ndarray) -> np.ndarray:
    """Average linkage over all pairs, cut where mean similarity falls below the floor."""
    m = words.shape[0]
    if m < 2:
        return np.zeros(m, dtype=np.int64)
    similarity = _similarity(words, topics, slice(0, m)).astype(np.float64)
    distance = np.clip(1.0 - similarity, 0.0, 2.0, out=similarity)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    return fcluster(tree, t=1.0 - MIN_SIMILARITY, criterion="distance") - 1
