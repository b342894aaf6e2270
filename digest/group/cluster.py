"""Themes: average-linkage clustering of articles, with no fixed number of themes.

Similarity blends two views, half and half. Meaning: the cosine of the
articles' embeddings (embed.py), which relates "halt on strikes" to "energy
truce". Words: TF-IDF (exact words, names and numbers, which tell apart
stories that embeddings blur), itself blended with LSA, a truncated SVD of the
same matrix that lets words which travel together ("Titanfall", "Xbox") count
as related once the day is big enough to show it. Average linkage merges two
groups only while the mean similarity of all their pairs is at least
MIN_SIMILARITY: an article joins a theme by being close to the theme as a
whole, not to one neighbour, so themes do not chain. Themes of one broader
subject are then merged at a second level (`_merge_themes`). At either level,
two groups that each hang together far more tightly than they resemble each
other stay two themes (`_apart`): one event type ("files for bankruptcy")
does not make two companies' stories one. Weights and
thresholds are one configuration for every day, checked on held-out stories
and other data sets (bench/group.py).

Up to MAX_EXACT reports are clustered exactly. Beyond that, reports that are
already very close are first pooled by their sparse neighbours (never an
n-by-n matrix), and the pools are clustered exactly by their mean vectors.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import squareform

from digest.group.vectors import unit_dense_rows, unit_rows

MEANING_WEIGHT = 0.5
LSA_WEIGHT = 0.8
LSA_HALF_AT = 200
LSA_ITERATIONS = 3  # randomized SVD power iterations: 5 cost more, no better on the tuning half
OVERSAMPLES = 10  # extra random directions, so the top topics are found well
LSA_FULL = 0.3  # an article this well described by the day's topics counts fully in them
MIN_SIMILARITY = 0.13
BACKGROUND_WEIGHT = 0.5  # the floor rises by this share of the day's median pair
BACKGROUND_SAMPLE = 100_000
THEME_MERGE = 0.2  # themes whose centres are this alike share one heading
MERGE_SIZE = 3  # themes smaller than this are never merged into broader ones
TIGHT_SIZE = 5  # groups this large show how alike their own articles are
TIGHT_SHARE = 0.4  # groups alike less than this share of their own likeness are two themes
MAX_EXACT = 3000
MAX_DIMENSIONS = 100
POOL_FLOORS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
BLOCK = 512


@dataclass(frozen=True)
class Views:
    """Unit rows of each view of the same articles, and each view's share of the similarity."""

    words: sp.csr_matrix
    topics: np.ndarray
    meaning: np.ndarray
    shares: tuple[float, float, float]

    @classmethod
    def of(cls, matrix: sp.csr_matrix, meaning: np.ndarray) -> Views:
        words = unit_rows(matrix).astype(np.float32)
        topics = _lsa(words)
        n = words.shape[0]
        # Few articles say little about which words travel together: lean on the
        # words themselves until there are some hundreds.
        lsa = LSA_WEIGHT * n / (n + LSA_HALF_AT) if topics.shape[1] else 0.0
        rest = 1 - MEANING_WEIGHT
        shares = (rest * (1 - lsa), rest * lsa, MEANING_WEIGHT)
        return cls(words, topics, meaning.astype(np.float32), shares)

    def similarity(self, rows: slice, cols: slice = slice(None)) -> np.ndarray:
        """Blended cosine of `rows` against `cols` (dense, float32)."""
        w, t, m = self.shares
        out = m * (self.meaning[rows] @ self.meaning[cols].T)
        out += w * (self.words[rows] @ self.words[cols].T).toarray()
        if t:
            out += t * (self.topics[rows] @ self.topics[cols].T)
        return out

    @cached_property
    def self_similarity(self) -> np.ndarray:
        """Each row's blended similarity with itself: 1 for unit rows, less where the
        topics row is short."""
        w, t, m = self.shares
        words = np.asarray(self.words.multiply(self.words).sum(axis=1)).ravel()
        return w * words + t * (self.topics**2).sum(axis=1) + m * (self.meaning**2).sum(axis=1)

    def pooled(self, members: sp.csr_matrix) -> Views:
        """Each row of `members` (weights over articles) as one unit row per view."""
        return Views(
            unit_rows(members @ self.words).astype(np.float32),
            _mean(members) @ self.topics,
            unit_dense_rows(members @ self.meaning).astype(np.float32),
            self.shares,
        )


def _mean(members: sp.csr_matrix) -> sp.csr_matrix:
    return unit_rows(members, norm="l1").astype(np.float32)


def cluster(views: Views, reports: np.ndarray) -> np.ndarray:
    """A theme number for each article.

    `reports` numbers each article's story: on days too big to cluster
    article by article, stories are clustered as units.
    """
    n = views.words.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    pools = _pool(views, reports)
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
    labels = np.empty(count, dtype=np.int64)
    labels[linked] = _average_linkage(views.pooled(members))
    alone = np.setdiff1d(np.arange(count), linked)
    labels[alone] = labels[linked].max() + 1 + np.arange(len(alone))
    return _merge_themes(views, pools, labels)[pools]


def _merge_themes(views: Views, pools: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Theme numbers with themes on one broader subject merged: a second, looser level.

    Average linkage over articles keeps each theme tight; an editor's heading
    is often broader (Iran's talks in Geneva and Iran closing the Strait of
    Hormuz during them). Themes of MERGE_SIZE articles or more whose centres
    (the mean of their articles, each view made unit) are at least THEME_MERGE
    alike, on average over all pairs, are merged. Single articles and pairs
    never are: one chance word must not pull them under a broad heading; nor
    are two themes `_apart` tells apart.
    """
    article_labels = labels[pools]
    sizes = np.bincount(article_labels)
    themes = np.flatnonzero(sizes >= MERGE_SIZE)
    if len(themes) < 2:
        return labels
    position = np.full(len(sizes), -1)
    position[themes] = np.arange(len(themes))
    keep = position[article_labels] >= 0
    members = sp.csr_matrix(
        (
            np.ones(keep.sum(), dtype=np.float32),
            (position[article_labels[keep]], np.flatnonzero(keep)),
        ),
        shape=(len(themes), len(article_labels)),
    )
    centres = views.pooled(members)
    similarity = centres.similarity(slice(None)).astype(np.float64)
    similarity[_apart(views, members)] = -1.0  # as far apart as themes can be
    distance = np.clip(1.0 - similarity, 0.0, 2.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    merged = fcluster(tree, t=1.0 - THEME_MERGE, criterion="distance") - 1
    new = np.arange(len(sizes)) + merged.max() + 1
    new[themes] = merged
    return new[labels]


def _lsa(words: sp.csr_matrix) -> np.ndarray:
    """Each article's place in a space of about sqrt(n) topics.

    Only terms used by two articles or more can relate words to each other,
    so the rest are left out of the SVD (most word pairs occur once). Rows
    are not made unit: an article whose words lie mostly outside the day's
    topics (a blog post among news) keeps a short vector, so it cannot look
    close to a topic on the strength of one shared word.
    """
    n = words.shape[0]
    shared = np.flatnonzero(np.diff(words.tocsc().indptr) >= 2)
    dimensions = min(MAX_DIMENSIONS, round(n**0.5), n - 1, len(shared) - 1)
    if dimensions < 2:
        return np.zeros((n, 0), dtype=np.float32)
    matrix = words[:, shared]
    with np.errstate(divide="ignore", invalid="ignore"):  # a day of identical texts
        topics = matrix @ svd_components(matrix, dimensions).T
    norms = np.linalg.norm(topics, axis=1, keepdims=True)
    return (topics / np.maximum(norms, LSA_FULL)).astype(np.float32)


def svd_components(matrix: sp.csr_matrix, k: int) -> np.ndarray:
    """The top `k` right singular vectors of `matrix`, as rows, by randomized SVD.

    scikit-learn's `TruncatedSVD(k, algorithm="randomized", n_iter=LSA_ITERATIONS,
    random_state=0)` step for step (tests/test_group.py checks it to the bit), without
    importing scikit-learn, which costs most of a second: a random range, LU-normalised
    power iterations, an exact SVD of the small projection, each row's largest
    entry made positive.
    """
    from scipy import linalg

    transpose = matrix.shape[0] < matrix.shape[1]  # iterate on the narrower side
    m = matrix.T if transpose else matrix
    if m.dtype.kind != "f":
        m = m.astype(np.float64)
    q = np.random.RandomState(0).normal(size=(m.shape[1], k + OVERSAMPLES)).astype(m.dtype)
    for _ in range(LSA_ITERATIONS):
        q, _ = linalg.lu(m @ q, permute_l=True, check_finite=False)
        q, _ = linalg.lu(m.T @ q, permute_l=True, check_finite=False)
    q, _ = linalg.qr(m @ q, mode="economic", check_finite=False)
    u, _, vt = linalg.svd(q.T @ m, full_matrices=False)
    components = (q @ u)[:, :k].T if transpose else vt[:k]
    largest = np.abs(components).argmax(axis=1)
    return components * np.sign(components[np.arange(k), largest])[:, np.newaxis]


def _pool(views: Views, reports: np.ndarray) -> np.ndarray:
    """Pool numbers: each article alone when few, else stories, else close stories."""
    n = views.words.shape[0]
    if n <= MAX_EXACT:
        return np.arange(n)
    count = int(reports.max()) + 1
    if count <= MAX_EXACT:
        return reports
    members = sp.csr_matrix(
        (np.ones(n, dtype=np.float32), (reports, np.arange(n))), shape=(count, n)
    )
    stories = views.pooled(members)

    def close(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs of stories above the lowest floor, among one block's rows."""
        block = stories.similarity(slice(start, start + BLOCK))
        r, c = np.nonzero(block >= POOL_FLOORS[-1])
        keep = c > r + start
        return r[keep] + start, c[keep], block[r[keep], c[keep]]

    # Two blocks at a time: their products run outside the GIL, so on both cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        rows, cols, sims = zip(*pool.map(close, range(0, count, BLOCK)), strict=True)
    row, col, sim = np.concatenate(rows), np.concatenate(cols), np.concatenate(sims)
    for floor in POOL_FLOORS:
        keep = sim >= floor
        graph = sp.coo_matrix((sim[keep], (row[keep], col[keep])), shape=(count, count))
        pools, labels = connected_components(graph, directed=False)
        if pools <= MAX_EXACT:
            break
    return labels[reports]


def _average_linkage(views: Views) -> np.ndarray:
    """Average linkage over all pairs, cut where mean similarity falls below the floor."""
    m = views.words.shape[0]
    if m < 2:
        return np.zeros(m, dtype=np.int64)
    similarity = views.similarity(slice(0, m)).astype(np.float64)
    distance = np.clip(1.0 - similarity, 0.0, 2.0, out=similarity)
    np.fill_diagonal(distance, 0.0)
    condensed = squareform(distance, checks=False)
    # The median of an evenly spaced sample: a full copy of millions of pairs costs memory.
    sample = condensed[:: max(1, len(condensed) // BACKGROUND_SAMPLE)]
    floor = MIN_SIMILARITY + BACKGROUND_WEIGHT * (1.0 - float(np.median(sample)))
    tree = linkage(condensed, method="average")
    labels = fcluster(tree, t=1.0 - floor, criterion="distance") - 1
    return _split_apart(views, tree, floor, labels)


def _split_apart(views: Views, tree: np.ndarray, floor: float, labels: np.ndarray) -> np.ndarray:
    """Each theme with two groups in it that `_apart` tells apart split in two: the
    floor lets Sbarro's bankruptcy and Mt. Gox's meet over "files for bankruptcy".

    Walks the tree from the root. A merge below the floor's cut joins two groups
    of one theme; each such merge of two groups large enough to judge is checked,
    and past a small group the larger is followed. A node's rows are a slice of
    the tree's leaf order, so nothing is copied row by row.
    """
    m = len(labels)
    order = leaves_list(tree)
    out = labels.copy()
    spare = int(labels.max()) + 1
    stack = [(2 * m - 2, 0)]  # (node, where its rows start in `order`)
    while stack:
        node, start = stack.pop()
        if node < m:
            continue
        one, other, height, _ = tree[node - m]
        one, other = int(one), int(other)
        size = 1 if one < m else int(tree[one - m, 3])
        ones, others = (
            order[start : start + size],
            order[start + size : start + int(tree[node - m, 3])],
        )
        children = [(one, start), (other, start + size)]
        if height > 1.0 - floor:  # above the cut: the children are separate themes already
            stack += children
        elif min(len(ones), len(others)) < TIGHT_SIZE:
            stack.append(children[0] if len(ones) > len(others) else children[1])
        else:
            if _apart(views, _groups([ones, others], m))[0, 1]:
                out[others] = spare
                spare += 1
            stack += children  # two groups apart may lie deeper, under a looser one
    return out


def likeness(views: Views, groups: list[np.ndarray]) -> np.ndarray:
    """How alike each group's rows are: their mean similarity over all pairs."""
    return _mean_similarities(views, _groups(groups, views.words.shape[0]))[1]


def _groups(rows: list[np.ndarray], m: int) -> sp.csr_matrix:
    """One row per group, with a 1 for each of its rows of the views."""
    return sp.csr_matrix(
        (
            np.ones(sum(len(r) for r in rows), dtype=np.float32),
            (np.repeat(np.arange(len(rows)), [len(r) for r in rows]), np.concatenate(rows)),
        ),
        shape=(len(rows), m),
    )


def _apart(views: Views, members: sp.csr_matrix) -> np.ndarray:
    """Which pairs of groups are two themes however close they come: both at least
    TIGHT_SIZE rows, and alike on average less than TIGHT_SHARE of the looser one's
    own likeness. Two tight stories sharing an event ("files for bankruptcy") are
    far less alike than each is inside; one story told in two ways is not."""
    cross, within = _mean_similarities(views, members)
    judged = np.asarray(members.sum(axis=1)).ravel() >= TIGHT_SIZE
    return (cross < TIGHT_SHARE * np.minimum.outer(within, within)) & np.outer(judged, judged)


def _mean_similarities(views: Views, members: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Mean similarity of all pairs across each two groups (a matrix) and inside each
    group (a vector), from the sums of their rows: no row-by-row matrix."""
    dots = np.zeros((members.shape[0], members.shape[0]))
    for share, rows in zip(views.shares, (views.words, views.topics, views.meaning), strict=True):
        if share:
            sums = members @ rows  # sparse for words: dense, a row would cost the vocabulary
            products = sums @ sums.T
            dots += share * (products.toarray() if sp.issparse(products) else products)
    own = members @ views.self_similarity  # each row with itself is no pair
    n = np.asarray(members.sum(axis=1)).ravel()
    return dots / np.outer(n, n), (np.diag(dots) - own) / np.maximum(n * (n - 1), 1)
