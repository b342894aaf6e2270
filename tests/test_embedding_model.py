"""DIGEST_EMBEDDING_MODEL: an operator's own model2vec folder gives articles their meaning.

Each model here is made in tmp_path as model2vec saves one: a `tokenizers`
tokenizer.json and a safetensors matrix named `embeddings`. Its made-up words
come in two sets of synonyms, so only a model that knows them joins "Quimble
dancers celebrate all night" to the Zorblat Festival: the headlines share no
word, and the bundled model has never seen either.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from support import SAMPLE_NOW, digest_env, free_port, invoke
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from digest.config import load_settings
from digest.group import ALSO_TODAY, GroupOptions
from digest.group.embed import embed
from digest.validate import MODEL_FIX

FESTIVAL = ["zorblat", "quimble", "festival", "varnok"]
BRIDGE = ["drennick", "plovast", "bridge", "tolvern"]
VOCABULARY = ["[UNK]", *FESTIVAL, *BRIDGE]
HEADLINES = {
    "Zorblat Festival opens its gates": "festival",
    "Zorblat Festival draws record crowds": "festival",
    "Quimble dancers celebrate all night": "festival",
    "Drennick Bridge reopens after repairs": "bridge",
    "Drennick Bridge traffic returns to normal": "bridge",
    "Plovast commuters cheer the news": "bridge",
}


def synonyms() -> np.ndarray:
    """One row per token: the festival words point one way, the bridge words another.
    The unknown token's row is large, so counting unknown words would blur everything."""
    matrix = np.zeros((len(VOCABULARY), 8), dtype=np.float32)
    matrix[0] = 5
    for word in FESTIVAL:
        matrix[VOCABULARY.index(word), 0] = 1
    for word in BRIDGE:
        matrix[VOCABULARY.index(word), 1] = 1
    return matrix


def model_folder(folder: Path, tensors: dict[str, np.ndarray] | None = None) -> Path:
    """A model2vec folder: tokenizer.json, model.safetensors and config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = {word: number for number, word in enumerate(VOCABULARY)}
    tokenizer = Tokenizer(models.WordLevel(ids, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    save_file(tensors or {"embeddings": synonyms()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"normalize": True}))
    return folder


def day_feed(tmp_path: Path) -> Path:
    """An RSS file with the day's six headlines, all inside the window ending SAMPLE_NOW."""
    items = "".join(
        f"<item><title>{title}</title><link>https://news.example/{n}</link>"
        f"<guid>https://news.example/{n}</guid>"
        f"<pubDate>Thu, 19 Mar 2026 0{n}:00:00 +0000</pubDate></item>"
        for n, title in enumerate(HEADLINES)
    )
    feed = tmp_path / "day.rss.xml"
    feed.write_text(
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Daily News</title><link>https://news.example/</link>{items}</channel></rss>"
    )
    return feed


def themes(tmp_path: Path, **settings: str) -> dict[str, set[str]]:
    """The edition's themes (label: headlines) from `digest preview --format json`."""
    env = digest_env(tmp_path, DIGEST_FEEDS=str(day_feed(tmp_path)), **settings)
    result = invoke(["preview", "--format", "json", "--now", SAMPLE_NOW], env, tmp_path)
    assert result.returncode == 0, result.stderr
    edition = json.loads(result.stdout)
    return {t["label"]: {a["title"] for a in t["articles"]} for t in edition["themes"]}


def by_set(name: str) -> set[str]:
    return {title for title, words in HEADLINES.items() if words == name}


def test_an_operators_model_joins_headlines_only_it_relates(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "potion")

    drawn = themes(tmp_path, DIGEST_EMBEDDING_MODEL=str(folder))

    assert drawn == {"Zorblat Festival": by_set("festival"), "Drennick Bridge": by_set("bridge")}


def test_the_default_is_the_bundled_model(tmp_path: Path) -> None:
    assert GroupOptions.from_settings(load_settings(_env_file=None)).embedding_model is None
    # The bundled model knows none of the made-up synonyms: the odd ones out stay alone.
    drawn = themes(tmp_path)
    assert drawn[ALSO_TODAY] == {
        "Quimble dancers celebrate all night",
        "Plovast commuters cheer the news",
    }
    assert embed(["Zorblat Festival opens"]).shape == (1, 256)

    env = digest_env(tmp_path, DIGEST_SMTP_PORT=str(free_port()), DIGEST_FEEDS="")
    lines = invoke(["check"], env, tmp_path).stdout.splitlines()
    assert (
        "ok   embedding model: bundled wordllama l2_supercat, 32,000 tokens x 256 dimensions"
        in (lines)
    )


def test_check_names_the_operators_model(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "potion")
    env = digest_env(
        tmp_path, DIGEST_EMBEDDING_MODEL=str(folder), DIGEST_SMTP_PORT=str(free_port())
    )

    lines = invoke(["check"], env, tmp_path).stdout.splitlines()

    assert f"ok   embedding model: {folder}, 9 tokens x 8 dimensions" in lines


def test_model2vec_weights_and_vocabulary_mapping_are_applied(tmp_path: Path) -> None:
    full = model_folder(tmp_path / "full")
    # The same model, quantized to its three distinct rows, with the festival word weighed 0.
    rows = np.array([[5] * 8, [1, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0]], np.float32)
    mapping = np.array([0, 1, 1, 1, 1, 2, 2, 2, 2], dtype=np.int64)
    weights = np.ones(len(VOCABULARY), dtype=np.float32)
    weights[VOCABULARY.index("festival")] = 0
    quantized = model_folder(
        tmp_path / "quantized", {"embeddings": rows, "mapping": mapping, "weights": weights}
    )
    texts = ["Zorblat Festival opens", "Plovast commuters cheer", "Festival", "nothing known"]

    expected = np.array([[1, 0], [0, 1], [0, 0], [0, 0]], dtype=np.float32)
    assert np.allclose(embed(texts, full)[:, :2], [[1, 0], [0, 1], [1, 0], [0, 0]])
    assert np.allclose(embed(texts, quantized)[:, :2], expected)
    assert not embed(texts, quantized)[:, 2:].any()


@pytest.mark.parametrize(
    ("layout", "problem"),
    [
        ("none", "{path} is not a folder"),
        ("file", "{path} is not a folder"),
        ("no model", "{path} has no model.safetensors"),
        ("no tokenizer", "{path} has no tokenizer.json"),
        ("empty", "{path} has no model.safetensors and no tokenizer.json"),
    ],
)
def test_a_wrong_model_folder_stops_every_command_at_settings(
    tmp_path: Path, layout: str, problem: str
) -> None:
    path = tmp_path / "potion"
    if layout == "file":
        path.write_text("not a folder")
    elif layout != "none":
        model_folder(path)
        if layout in ("no model", "empty"):
            (path / "model.safetensors").unlink()
        if layout in ("no tokenizer", "empty"):
            (path / "tokenizer.json").unlink()
    env = digest_env(tmp_path, DIGEST_EMBEDDING_MODEL=str(path))
    expected = f"DIGEST_EMBEDDING_MODEL: {problem.format(path=path)}; {MODEL_FIX} (got '{path}')"

    run = invoke(["run", "--dry-run", "--now", SAMPLE_NOW], env, tmp_path)
    check = invoke(["check"], env, tmp_path)

    assert run.returncode == 2 and check.returncode == 2
    assert run.stderr.splitlines() == [f"configuration error: {expected}"]
    assert f"FAIL settings: {expected}" in check.stdout.splitlines()
    assert "Traceback" not in run.stderr + check.stderr
    assert MODEL_FIX == (
        "point DIGEST_EMBEDDING_MODEL at a model2vec folder (model.safetensors, "
        "tokenizer.json) or leave it empty for the bundled model"
    )


def _corrupt(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"not safetensors at all")


def _cube(folder: Path) -> None:
    save_file({"embeddings": np.zeros((9, 2, 4), np.float32)}, str(folder / "model.safetensors"))


def _unnamed(folder: Path) -> None:
    two = {"vectors": synonyms(), "other": synonyms()}
    save_file(two, str(folder / "model.safetensors"))


def _short(folder: Path) -> None:
    save_file({"embeddings": synonyms()[:5]}, str(folder / "model.safetensors"))


def _broken_tokenizer(folder: Path) -> None:
    (folder / "tokenizer.json").write_text("{not json")


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (_corrupt, "model.safetensors cannot be read as safetensors ("),
        (_cube, "model.safetensors: the embeddings are float32 of shape (9, 2, 4), not a"),
        (_unnamed, "model.safetensors: no tensor named 'embeddings' among other, vectors"),
        (_short, "tokenizer.json has 9 tokens but {folder}/model.safetensors only 5 vectors"),
        (_broken_tokenizer, "tokenizer.json is no tokenizer ("),
    ],
)
def test_a_model_that_cannot_be_read_is_one_line_naming_the_file(
    tmp_path: Path, spoil, problem: str
) -> None:
    folder = model_folder(tmp_path / "potion")
    spoil(folder)
    env = digest_env(
        tmp_path,
        DIGEST_EMBEDDING_MODEL=str(folder),
        DIGEST_FEEDS=str(day_feed(tmp_path)),
        DIGEST_SMTP_PORT=str(free_port()),
    )

    run = invoke(["run", "--dry-run", "--now", SAMPLE_NOW], env, tmp_path)
    check = invoke(["check"], env, tmp_path)

    assert run.returncode == 1
    [line] = run.stderr.splitlines()
    assert line.startswith(f"error: {folder}/{problem.format(folder=folder)}"), line
    assert line.endswith(MODEL_FIX)
    [failed] = [x for x in check.stdout.splitlines() if x.startswith("FAIL embedding model:")]
    assert failed == f"FAIL embedding model: {line.removeprefix('error: ')}"
    assert "Traceback" not in run.stderr + check.stderr
