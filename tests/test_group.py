"""Grouping: near-duplicates, themes, labels, ranking and caps, on headlines written for it.

tests/data/headlines.csv is a small labelled day (story, source, time, title,
summary) written for these tests; the real-headline measurements are in
bench/group.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import REPO, SAMPLE_FEEDS, SAMPLE_NOW, FeedServer, digest_env, invoke

from digest.config import ConfigError, load_settings
from digest.group import ALSO_TODAY, GroupOptions, Topic, group
from digest.models import Article, Edition, edition_json

DATA = Path(__file__).parent / "data" / "headlines.csv"


# The bench's reader of this file, so both read it one way.
_spec = importlib.util.spec_from_file_location("bench_days", REPO / "bench" / "days.py")
assert _spec is not None and _spec.loader is not None
_days = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_days)


def load_day() -> list[tuple[Article, str]]:
    return _days.load_own(DATA)


def by_title(themes, fragment: str) -> tuple[int, Article]:
    for number, theme in enumerate(themes):
        for article in theme.articles:
            if fragment in article.title:
                return number, article
    raise AssertionError(f"no article titled like {fragment!r}")


def as_json(themes) -> str:
    edition = Edition(
        id="digest/2026-03-18",
        generated_at=datetime(2026, 3, 19, tzinfo=UTC),
        window_start=datetime(2026, 3, 18, tzinfo=UTC),
        window_end=datetime(2026, 3, 19, tzinfo=UTC),
        themes=themes,
        feeds=[],
    )
    return json.dumps(edition_json(edition), sort_keys=True)


def bcubed_f1(themes, gold: dict[str, str]) -> float:
    found = {}
    for number, theme in enumerate(themes):
        for a in theme.articles:
            found[a.key] = a.key if theme.catch_all else str(number)
    keys = list(gold)
    pairs = Counter((found[k], gold[k]) for k in keys)
    sizes_found, sizes_gold = Counter(found[k] for k in keys), Counter(gold.values())
    p = sum(c * c / sizes_found[f] for (f, _), c in pairs.items()) / len(keys)
    r = sum(c * c / sizes_gold[g] for (_, g), c in pairs.items()) / len(keys)
    return 2 * p * r / (p + r)


@pytest.fixture(scope="module")
def day() -> list[tuple[Article, str]]:
    return load_day()


@pytest.fixture(scope="module")
def themes(day):
    return group([a for a, _ in day])


def test_reworded_wire_copy_is_one_report_listing_every_outlet(themes) -> None:
    number, first = by_title(themes, "EU Leaders Agree Migration Pact")
    same, copy = by_title(themes, "European Union Reaches Migration Deal")

    assert same == number
    assert first.also_reported_by == ("Northern Courier",)
    assert first.shown and first.duplicate_of is None
    assert copy.duplicate_of == first.key and not copy.shown


def test_reports_on_one_subject_that_say_different_things_stay_separate(themes) -> None:
    theme_a, scrape = by_title(themes, "Holders scrape into Champions League")
    theme_b, draw = by_title(themes, "Champions League quarter-final draw")
    _, hungary = by_title(themes, "Hungary and Poland vow to resist")

    assert theme_a == theme_b
    assert scrape.duplicate_of is None and draw.duplicate_of is None
    assert hungary.duplicate_of is None and hungary.shown


def test_every_article_is_listed_exactly_once(day, themes) -> None:
    listed = [a.key for t in themes for a in t.articles]
    assert sorted(listed) == sorted(a.key for a, _ in day)


def test_themes_match_the_labelled_stories(day, themes) -> None:
    assert bcubed_f1(themes, {a.key: story for a, story in day}) >= 0.85


def test_themes_ranked_by_reach_with_other_news_last_and_readable_labels(themes) -> None:
    named = themes[:-1]
    assert themes[-1].label == ALSO_TODAY
    reach = [len({a.source for a in t.articles}) for t in named]
    assert reach == sorted(reach, reverse=True)
    labels = {t.label for t in named}
    assert "Storm Edda" in labels
    assert any("migration" in label.lower() for label in labels)
    for label in labels:
        assert 2 <= len(label) <= 80 and label != ALSO_TODAY
    storm = next(t for t in named if t.label == "Storm Edda")
    rest = [a.published for a in storm.articles[1:] if a.duplicate_of is None]
    assert rest == sorted(rest, reverse=True)


def test_same_day_in_any_order_gives_the_same_themes(day) -> None:
    articles = [a for a, _ in day]
    expected = as_json(group(articles))
    for seed in range(3):
        shuffled = articles[:]
        random.Random(seed).shuffle(shuffled)
        assert as_json(group(shuffled)) == expected


def test_empty_day_has_no_themes() -> None:
    assert group([]) == []
    assert json.loads(as_json([]))["themes"] == []


def test_one_article_is_other_news_and_shown(day) -> None:
    article = day[0][0]
    themes = group([article], GroupOptions(max_themes=3, max_articles_per_theme=1))
    assert [t.label for t in themes] == [ALSO_TODAY]
    assert themes[0].shown and themes[0].articles[0].shown
    assert themes[0].articles[0].key == article.key


def test_caps_hide_but_json_lists_everything(day) -> None:
    options = GroupOptions(max_themes=2, max_articles_per_theme=2)
    themes = group([a for a, _ in day], options)
    edition = json.loads(as_json(themes))

    assert [t["shown"] for t in edition["themes"]] == [True, True] + [False] * (len(themes) - 2)
    for theme in edition["themes"]:
        shown = [a for a in theme["articles"] if a["shown"]]
        assert len(shown) <= (2 if theme["shown"] else 0)
        assert theme["lead"] == theme["articles"][0]
        if theme["shown"]:
            assert theme["lead"]["shown"]
    assert sum(len(t["articles"]) for t in edition["themes"]) == len(day)
    assert all("also_reported_by" in a for t in edition["themes"] for a in t["articles"])


def test_zero_caps_show_everything_but_folded_copies(day) -> None:
    themes = group([a for a, _ in day], GroupOptions(max_themes=0, max_articles_per_theme=0))
    assert all(t.shown for t in themes)
    for article in (a for t in themes for a in t.articles):
        assert article.shown == (article.duplicate_of is None)


def test_operator_topic_pins_matching_articles(day) -> None:
    health = Topic("Health", ("measles", "vaccination"))
    themes = group([a for a, _ in day], GroupOptions(topics=(health,)))
    pinned = next(t for t in themes if t.label == "Health")
    measles = {a.key for a, story in day if story == "measles"}
    assert {a.key for a in pinned.articles} == measles
    assert sum(t.label == "Health" for t in themes) == 1


def test_topics_and_caps_come_from_settings(monkeypatch) -> None:
    monkeypatch.setenv("DIGEST_TOPICS", "Health: measles, vaccination; Weather: Storm Edda")
    monkeypatch.setenv("DIGEST_MAX_THEMES", "4")
    options = GroupOptions.from_settings(load_settings(_env_file=None))
    assert options.max_themes == 4 and options.max_articles_per_theme == 5  # the default
    assert options.topics == (
        Topic("Health", ("measles", "vaccination")),
        Topic("Weather", ("Storm Edda",)),
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DIGEST_TOPICS", "Health measles", "DIGEST_TOPICS: topic 'Health measles' needs"),
        ("DIGEST_TOPICS", "Health: ; Sport: goal", "DIGEST_TOPICS: topic 'Health:' needs"),
        ("DIGEST_TOPICS", 'Quotes: ""', "DIGEST_TOPICS: 'Quotes': topic '\"\"' has no letter"),
        ("DIGEST_MAX_THEMES", "-1", "DIGEST_MAX_THEMES:"),
        ("DIGEST_MAX_ARTICLES_PER_THEME", "many", "DIGEST_MAX_ARTICLES_PER_THEME:"),
    ],
)
def test_wrong_grouping_settings_name_the_variable(monkeypatch, name, value, expected) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None)
    assert str(error.value).startswith(expected)


def test_hostile_and_empty_titles_do_not_break_grouping() -> None:
    now = datetime(2026, 3, 18, 12, tzinfo=UTC)
    titles = ["", "the of and", "🔥🔥🔥", "<script>alert(1)</script>", "x" * 5000, "Ünïcödé ñews"]
    articles = [
        Article(
            key=f"k{n}",
            title=title,
            url=f"https://example.org/{n}",
            source=f"S{n % 2}",
            feed_url="https://example.org/feed",
            published=now - timedelta(minutes=n),
        )
        for n, title in enumerate(titles * 2)
    ]
    themes = group(articles)
    assert sorted(a.key for t in themes for a in t.articles) == sorted(a.key for a in articles)
    assert all(t.label for t in themes)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Week 2 of the Trial", {"2"}),
        ("Part II: The Return", {"ii"}),
        ("Python 3.5.0beta1 released", {"3.5.0beta1"}),
        ("MH370 search, day 12", {"12", "mh370"}),
        ("The XIV Olympics", {"xiv"}),
        ("a_1 b2c", {"1", "b2c"}),
        ("Windows 8.1 (VIDEO)", {"8.1"}),  # no empty number where 'VI' opens "VIDEO"
        ("no numbers here", set()),
    ],
)
def test_numbers_a_title_carries(title, expected) -> None:
    from digest.group.text import numbers

    assert numbers(title) == expected


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Second JSON Feed Item", {"2nd"}),  # an ordinal in words, as its figure
        ("The first and the THIRD", {"1st", "3rd"}),
        ("Firstly, a secondhand tenth", {"10th"}),  # whole words only
        ("Part 2 of the 2nd series", set()),  # figures are numbers()
    ],
)
def test_ordinals_a_title_spells_out(title, expected) -> None:
    from digest.group.text import ordinals

    assert ordinals(title) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Why Sheryl Sandberg wants us to #BanBossy", "Why Sheryl Sandberg wants us to Ban Bossy"),
        ("#NASAPhotos of #MH370 search", "NASA Photos of MH370 search"),
        ("#iOS and #eBay keep their case", "iOS and eBay keep their case"),
        ("no tag, #1 and # alone", "no tag, 1 and # alone"),
    ],
)
def test_hashtags_read_as_the_words_they_join(text, expected) -> None:
    from digest.group.text import unhashed, words

    assert unhashed(text) == expected
    assert [w for w, _ in words(text)] == [w for w, _ in words(expected)]


def test_article_replace_is_model_copy(day) -> None:
    """Article.replace skips pydantic's copying: the copy must be the one model_copy makes."""
    article = day[0][0]
    changes = {"shown": False, "story": 7, "duplicate_of": "https://example.org/1"}
    ours, theirs = article.replace(**changes), article.model_copy(update=changes)
    assert ours == theirs and ours is not article
    assert ours.model_fields_set == theirs.model_fields_set
    assert ours.model_dump() == theirs.model_dump()
    assert article.shown and article.story == 0  # the original is left as it was
    with pytest.raises(ValueError):  # still frozen
        ours.title = "changed"


@pytest.mark.parametrize("part", ["title", "summary", "both", "none"])
def test_tfidf_is_scikit_learns_bit_for_bit(day, part) -> None:
    """Our bulk-counted TF-IDF must be exactly scikit-learn's: themes depend on every bit."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    from digest.group.text import terms
    from digest.group.vectors import tfidf

    texts = {
        "title": [a.title for a, _ in day],
        "summary": [a.summary for a, _ in day],
        "both": [f"{a.title} {a.summary}" for a, _ in day] * 2,
        "none": ["", "the of and", "🔥"],
    }[part]
    ours = tfidf(texts)
    if part == "none":  # scikit-learn refuses a vocabulary of nothing; every row is zero
        assert ours.shape == (3, 1) and ours.nnz == 0
        return
    theirs = TfidfVectorizer(analyzer=terms, sublinear_tf=True, dtype=np.float32)
    expected = theirs.fit_transform(texts).tocsr()
    assert ours.shape == expected.shape and ours.dtype == expected.dtype
    assert np.array_equal(ours.indptr, expected.indptr)
    ours.sort_indices()
    expected.sort_indices()
    assert np.array_equal(ours.indices, expected.indices)
    assert np.array_equal(ours.data.view(np.uint32), expected.data.view(np.uint32))


def test_the_topic_model_is_scikit_learns_truncated_svd_bit_for_bit(day) -> None:
    """Grouping does not import scikit-learn (most of a second): its own randomized SVD
    and unit rows must give exactly what scikit-learn's would, on either side's shape."""
    import numpy as np
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    from digest.group.cluster import LSA_ITERATIONS, svd_components
    from digest.group.vectors import article_vectors, unit_dense_rows, unit_rows

    both = article_vectors([a for a, _ in day]).both
    ours = unit_rows(both)
    assert np.array_equal(ours.data.view(np.uint32), normalize(both).data.view(np.uint32))
    assert np.array_equal(unit_rows(both, "l1").data, normalize(both, norm="l1").data)
    dense = both[:, :30].toarray()
    dense[3] = 0  # an empty row stays empty, as scikit-learn leaves it
    assert np.array_equal(unit_dense_rows(dense), normalize(dense))
    counts = (both[:, :30] > 0).astype(np.int64)  # integers are scaled as floats
    assert np.array_equal(unit_rows(counts).toarray(), normalize(counts).toarray())
    assert np.array_equal(unit_dense_rows(counts.toarray()), normalize(counts.toarray()))
    for matrix in (ours, ours.T.tocsr()):  # fewer rows than columns, and more
        svd = TruncatedSVD(6, algorithm="randomized", n_iter=LSA_ITERATIONS, random_state=0)
        expected = svd.fit_transform(matrix)
        assert np.array_equal(matrix @ svd_components(matrix, 6).T, expected)


def test_the_stop_words_are_scikit_learns() -> None:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from digest.group.stopwords import ENGLISH_STOP_WORDS as ours

    assert ours == ENGLISH_STOP_WORDS


def test_grouping_imports_no_scikit_learn() -> None:
    """scikit-learn is only the reference in these tests: importing it costs most of a second."""
    code = (
        "import sys\nfrom pathlib import Path\nsys.path.insert(0, 'bench')\n"
        "from days import load_own\nfrom digest.group import group\n"
        f"themes = group([a for a, _ in load_own(Path({str(DATA)!r}))])\n"
        "print(sum(not t.catch_all for t in themes), 'sklearn' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    themes, imported = result.stdout.split()
    assert int(themes) >= 5 and imported == "False"  # grouped for real, and no sklearn


def test_pooled_path_for_large_days_keeps_every_article(day, monkeypatch) -> None:
    cluster_module = importlib.import_module("digest.group.cluster")
    monkeypatch.setattr(cluster_module, "MAX_EXACT", 8)
    themes = group([a for a, _ in day])
    assert sorted(a.key for t in themes for a in t.articles) == sorted(a.key for a, _ in day)
    assert bcubed_f1(themes, {a.key: story for a, story in day}) >= 0.7


def test_preview_json_lists_everything_and_the_digest_shows_only_the_capped(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    urls = []
    for path in sorted(SAMPLE_FEEDS.glob("*.xml")):
        shutil.copy(path, feed_server.root / path.name)
        urls.append(feed_server.url(path.name))
    env = digest_env(
        tmp_path,
        DIGEST_FEEDS=",".join(urls),
        DIGEST_MAX_THEMES="1",
        DIGEST_MAX_ARTICLES_PER_THEME="1",
    )

    preview = invoke(["preview", "--format", "json", "--now", SAMPLE_NOW], env, tmp_path)
    assert preview.returncode == 0, preview.stderr
    edition = json.loads(preview.stdout)
    shown = [t for t in edition["themes"] if t["shown"]]
    hidden = [t for t in edition["themes"] if not t["shown"]]
    assert len(shown) == 1 and hidden
    assert edition["themes"][-1]["label"] == ALSO_TODAY
    for theme in edition["themes"]:
        assert theme["lead"]["url"] == theme["articles"][0]["url"]
        assert all({"shown", "also_reported_by"} <= set(a) for a in theme["articles"])

    files = invoke(["preview", "--now", SAMPLE_NOW, "--out", "out"], env, tmp_path)
    assert files.returncode == 0, files.stderr
    text = (tmp_path / "out" / "digest.txt").read_text(encoding="utf-8")
    assert shown[0]["label"] in text
    assert shown[0]["lead"]["title"] in text
    assert len(shown[0]["articles"]) > 1
    assert all(a["title"] not in text for a in shown[0]["articles"][1:])
    assert all(t["lead"]["title"] not in text for t in hidden)
