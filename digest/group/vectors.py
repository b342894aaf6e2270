"""Sparse TF-IDF vectors and sparse neighbour search, shared by dedupe and cluster.

Nothing here builds an n-by-n dense matrix: similarities are computed a block
of rows at a time and only pairs above a floor are kept, so 20,000 headlines
fit in a few hundred megabytes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from digest.group.text import terms
from digest.models import Article

BLOCK = 1024  # rows multiplied at a time: measured a little faster than 2,048, and less memory


TITLE_SHARE = 0.7


class ArticleVectors(NamedTuple):
    """Each article's TF-IDF rows: `both` for clustering, `titles` and `summaries` for stories."""

    both: sp.csr_matrix
    titles: sp.csr_matrix
    summaries: sp.csr_matrix


def article_vectors(articles: list[Article]) -> ArticleVectors:
    """Unit vectors of title and summary, the title carrying TITLE_SHARE of the weight;
    and the titles' and summaries' own TF-IDF, which stories are told apart by.

    A long summary would otherwise drown the few words of the headline,
    which are what an editor groups by.
    """
    titles = tfidf([a.title for a in articles])
    summaries = tfidf([a.summary for a in articles])
    has_summary = np.diff(summaries.indptr) > 0
    title_weight = np.where(has_summary, TITLE_SHARE**0.5, 1.0).astype(np.float32)
    summary_weight = np.where(has_summary, (1 - TITLE_SHARE) ** 0.5, 0.0).astype(np.float32)
    both = sp.hstack(
        [sp.diags(title_weight) @ titles, sp.diags(summary_weight) @ summaries], format="csr"
    )
    return ArticleVectors(both, titles, summaries)


def tfidf(texts: list[str]) -> sp.csr_matrix:
    """Unit-length TF-IDF rows (log-scaled counts, smoothed idf), columns in the
    terms' alphabetical order; a text with no meaningful word gets an all-zero row.

    What scikit-learn's `TfidfVectorizer(analyzer=terms, sublinear_tf=True)`
    gives (tests/test_group.py checks), with the counting done here in bulk:
    its term-by-term Python loop costs a quarter of a second at 20,000 headlines.
    """
    analysed = [terms(t) for t in texts]
    vocabulary = {t: i for i, t in enumerate(sorted({t for doc in analysed for t in doc}))}
    if not vocabulary:
        return sp.csr_matrix((len(texts), 1), dtype=np.float32)
    columns = np.fromiter((vocabulary[t] for doc in analysed for t in doc), dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum([len(doc) for doc in analysed])])
    counts = sp.csr_matrix(
        (np.ones(len(columns), dtype=np.float32), columns, indptr),
        shape=(len(texts), len(vocabulary)),
    )
    counts.sum_duplicates()
    # scikit-learn's TfidfTransformer(sublinear_tf=True), step for step in float32.
    df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float32) + 1
    idf = np.full_like(df, len(texts) + 1)
    idf /= df
    np.log(idf, out=idf)
    idf += 1
    np.log(counts.data, out=counts.data)
    counts.data += 1
    counts.data *= idf[counts.indices]
    return unit_rows(counts)


def unit_rows(matrix: sp.csr_matrix, norm: str = "l2") -> sp.csr_matrix:
    """Each row scaled to length 1 ("l2") or sum 1 ("l1"); all-zero rows left as they are.

    scikit-learn's `normalize` to the bit: float32 values, each row's norm summed
    in float64 in order. Importing scikit-learn costs most of a second.
    """
    out = matrix.tocsr(copy=True)
    if out.dtype.kind != "f":  # counts: scaled in float64, as scikit-learn does
        out = out.astype(np.float64)
    rows = np.repeat(np.arange(out.shape[0]), np.diff(out.indptr))
    sizes = np.abs(out.data) if norm == "l1" else out.data * out.data
    norms = np.bincount(rows, weights=sizes.astype(np.float64), minlength=out.shape[0])
    if norm == "l2":
        norms = np.sqrt(norms)
    norms[norms == 0] = 1
    out.data = (out.data / norms[rows]).astype(out.dtype)
    return out


def unit_dense_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row of a dense matrix scaled to length 1 (as scikit-learn's `normalize`)."""
    if matrix.dtype.kind != "f":
        matrix = matrix.astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    norms[norms < 10 * np.finfo(norms.dtype).eps] = 1
    return matrix / norms[:, np.newaxis]


def pairs_above(matrix: sp.csr_matrix, floor: float) -> sp.coo_matrix:
    """The upper triangle of matrix @ matrix.T where the cosine is at least `floor`."""
    n = matrix.shape[0]
    rows, cols, vals = [], [], []
    transposed = matrix.T.tocsr()
    for start in range(0, n, BLOCK):
        # Only columns from the block's first row on: the lower triangle is not wanted.
        block = (matrix[start : start + BLOCK] @ transposed[:, start:]).tocoo()
        keep = (block.data >= floor) & (block.col > block.row)
        rows.append(block.row[keep] + start)
        cols.append(block.col[keep] + start)
        vals.append(block.data[keep])
    if not rows:
        return sp.coo_matrix((n, n), dtype=np.float32)
    return sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
