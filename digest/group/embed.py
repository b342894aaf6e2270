"""Meaning: unit vectors from the static word-embedding model shipped inside `wordllama`.

Headlines of one topic often share one word or none ("Putin accepts halt on
strikes", "Trump and Putin's call yields energy truce"); averaged word
embeddings put them close. The model (32,000 tokens x 256 dimensions, 16 MB)
is a file inside the installed wheel: it is read from site-packages with
`safetensors` and `tokenizers`, never fetched, and loads in a fraction of a
second. wordllama's own loader is not used: it looks for the tokenizer under a
folder name the wheel does not ship and would then try to download it.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from digest.models import DigestError

MODEL = "l2_supercat"
DIMENSIONS = 256
BATCH = 1024
MAX_WORDS = 60  # a headline and the start of its summary: enough to say what it is about


class ModelMissing(DigestError):
    """The embedding model's files are not where the installed package should have them."""


@lru_cache(maxsize=1)
def _model() -> tuple[object, np.ndarray]:
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    spec = importlib.util.find_spec("wordllama")
    if spec is None or spec.origin is None:
        raise ModelMissing("grouping needs the 'wordllama' package: pip install digest again")
    root = Path(spec.origin).parent
    weights = root / "weights" / f"{MODEL}_{DIMENSIONS}.safetensors"
    vocabulary = root / "tokenizers" / f"{MODEL}_tokenizer_config.json"
    for path in (weights, vocabulary):
        if not path.is_file():
            raise ModelMissing(f"{path} is missing: reinstall wordllama>=0.4 (pip install digest)")
    tokenizer = Tokenizer.from_file(str(vocabulary))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    table = load_file(str(weights))["embedding.weight"].astype(np.float32)
    return tokenizer, table


def embed(texts: list[str]) -> np.ndarray:
    """One unit row per text (float32): the mean of its tokens; no known token, a zero row.

    The tokenizer never joins pieces across a space, so each distinct word is
    tokenized once and a text is the sum of its words: a day's headlines share
    most of their words, which makes this several times faster than encoding
    every text.
    """
    tokenizer, table = _model()
    split = [text.split()[:MAX_WORDS] for text in texts]
    vocabulary = {w: i for i, w in enumerate(dict.fromkeys(w for ws in split for w in ws))}
    words = np.zeros((len(vocabulary), table.shape[1]), dtype=np.float32)
    listed = list(vocabulary)
    for start in range(0, len(listed), BATCH):
        encoded = tokenizer.encode_batch(listed[start : start + BATCH], add_special_tokens=False)
        words[start : start + len(encoded)] = _sums(table, [e.ids for e in encoded])
    rows = _counts([[vocabulary[w] for w in ws] for ws in split], len(vocabulary))
    out = np.asarray(rows @ words, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=out, where=norms > 0)


def _sums(table: np.ndarray, ids: list[list[int]]) -> np.ndarray:
    """Sum of the token vectors of each list of token ids."""
    counts = _counts(ids, table.shape[0])
    return np.asarray(counts @ table, dtype=np.float32)


def _counts(lists: list[list[int]], width: int) -> sp.csr_matrix:
    indptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])])
    columns = np.fromiter((c for x in lists for c in x), dtype=np.int64, count=int(indptr[-1]))
    np.clip(columns, 0, width - 1, out=columns)
    data = np.ones(len(columns), dtype=np.float32)
    return sp.csr_matrix((data, columns, indptr), shape=(len(lists), width))
