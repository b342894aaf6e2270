"""Meaning: unit vectors from the static word-embedding model shipped inside `wordllama`,
or from the operator's own model2vec folder (DIGEST_EMBEDDING_MODEL).

Headlines of one topic often share one word or none ("Putin accepts halt on
strikes", "Trump and Putin's call yields energy truce"); averaged word
embeddings put them close. The model (32,000 tokens x 256 dimensions, 16 MB)
is a file inside the installed wheel: it is read from site-packages with
`safetensors` and `tokenizers`, never fetched, and loads in a fraction of a
second. wordllama's own loader is not used: it looks for the tokenizer under a
folder name the wheel does not ship and would then try to download it.

An operator's model2vec model (e.g. potion-base-8M, fetched by them) is read
the same way, without the model2vec package: its tokenizer.json, and from
model.safetensors the `embeddings` matrix, with model2vec's optional per-token
`weights` and `mapping` (vocabulary quantization) applied once at load.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from digest.errors import ModelError
from digest.validate import MODEL_FILES, MODEL_FIX

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODEL = "l2_supercat"
DIMENSIONS = 256
BATCH = 1024
MAX_WORDS = 60  # a headline and the start of its summary: enough to say what it is about


def describe(folder: Path | None) -> str:
    """Which model grouping uses, and its size, loading it as a run would (`digest check`)."""
    _, table = _model(folder)
    name = f"bundled wordllama {MODEL}" if folder is None else str(folder)
    return f"{name}, {table.shape[0]:,} tokens x {table.shape[1]} dimensions"


def _model(folder: Path | None) -> tuple[Tokenizer, np.ndarray]:
    """The tokenizer and the token vectors (float32): the bundled model, or the folder's."""
    return _bundled() if folder is None else _model2vec(folder)


@lru_cache(maxsize=1)
def _bundled() -> tuple[Tokenizer, np.ndarray]:
    from safetensors.numpy import load_file

    spec = importlib.util.find_spec("wordllama")
    if spec is None or spec.origin is None:
        raise ModelError("grouping needs the 'wordllama' package: pip install digest again")
    root = Path(spec.origin).parent
    weights = root / "weights" / f"{MODEL}_{DIMENSIONS}.safetensors"
    vocabulary = root / "tokenizers" / f"{MODEL}_tokenizer_config.json"
    for path in (weights, vocabulary):
        if not path.is_file():
            raise ModelError(f"{path} is missing: reinstall wordllama>=0.4 (pip install digest)")
    table = load_file(str(weights))["embedding.weight"].astype(np.float32)
    return _tokenizer(vocabulary), table


@lru_cache(maxsize=4)  # one per process in service; a few in tests
def _model2vec(folder: Path) -> tuple[Tokenizer, np.ndarray]:
    """An operator's model2vec folder, or ModelError saying which file is wrong."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    weights, vocabulary = (folder / name for name in MODEL_FILES)
    try:
        tensors = load_file(str(weights))
    # TypeError: a dtype numpy lacks (bfloat16).
    except (OSError, SafetensorError, TypeError) as exc:
        raise ModelError(f"{weights} cannot be read as safetensors ({exc}); {MODEL_FIX}") from None
    try:
        table = _table(tensors)
    except ValueError as exc:
        raise ModelError(f"{weights}: {exc}; {MODEL_FIX}") from None
    try:
        tokenizer = _tokenizer(vocabulary)
    except Exception as exc:  # tokenizers raises a bare Exception for any bad file
        raise ModelError(f"{vocabulary} is no tokenizer ({exc}); {MODEL_FIX}") from None
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if size > table.shape[0]:
        raise ModelError(
            f"{vocabulary} has {size:,} tokens but {weights} only {table.shape[0]:,} vectors: "
            f"they are not from one model; {MODEL_FIX}"
        )
    # As model2vec does, an unknown word adds nothing (else every unknown word looks alike).
    unknown = getattr(tokenizer.model, "unk_token", None)
    if unknown is not None and (row := tokenizer.token_to_id(unknown)) is not None:
        table[row] = 0
    return tokenizer, table


def _table(tensors: dict[str, np.ndarray]) -> np.ndarray:
    """One float32 row per token id from model2vec's tensors, or ValueError saying why not."""
    if "embeddings" in tensors:
        matrix = tensors["embeddings"]
    elif len(tensors) == 1:
        matrix = next(iter(tensors.values()))
    else:
        raise ValueError(f"no tensor named 'embeddings' among {', '.join(sorted(tensors))}")
    if matrix.ndim != 2 or 0 in matrix.shape or matrix.dtype.kind not in "fiu":
        raise ValueError(
            f"the embeddings are {matrix.dtype} of shape {matrix.shape}, "
            "not a numeric matrix of tokens x dimensions"
        )
    table = matrix.astype(np.float32)
    mapping, weights = tensors.get("mapping"), tensors.get("weights")
    if mapping is not None:
        rows = mapping.astype(np.int64) if mapping.dtype.kind in "iu" else None
        if rows is None or rows.ndim != 1 or not ((rows >= 0) & (rows < len(table))).all():
            raise ValueError("its 'mapping' is not one row number per token")
        table = table[rows]
    if weights is not None:
        if weights.shape != (len(table),):
            raise ValueError(f"its 'weights' are not one number per token ({len(table):,})")
        table *= weights.astype(np.float32)[:, None]
    if not np.isfinite(table).all():
        raise ValueError("the embeddings hold NaN or infinite values")
    return table


def _tokenizer(path: Path) -> Tokenizer:
    """The tokenizer in a tokenizer.json, set to encode words as they are."""
    import tokenizers

    tokenizer = tokenizers.Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def embed(texts: list[str], model: Path | None = None) -> np.ndarray:
    """One unit row per text (float32): the mean of its tokens; no known token, a zero row.

    `model` is an operator's model2vec folder (DIGEST_EMBEDDING_MODEL); None, the
    bundled model.

    The tokenizer never joins pieces across a space, so each distinct word is
    tokenized once and a text is the sum of its words: a day's headlines share
    most of their words, which makes this several times faster than encoding
    every text.
    """
    tokenizer, table = _model(model)
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
