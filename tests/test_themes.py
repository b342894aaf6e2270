"""Themes an editor would draw: labels, topic filters, numbered posts and the catch-all.

The label check runs over the shared labelled data sets (../shared/data beside
the repository, as in CI); it is skipped, saying why, where they are absent.
The data sets are read through bench/group.py's loaders, so the benchmark and
these tests see the same days.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from bs4 import BeautifulSoup
from support import REPO, SHARED_DATA
from test_render import READER, edition, settings

from digest.group import ALSO_TODAY, group
from digest.group.label import Labeller
from digest.group.text import unhashed
from digest.models import Article, Subscriber, Theme, edition_json
from digest.personalise import personalise
from digest.render import Renderer

SHARED = SHARED_DATA
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")

_spec = importlib.util.spec_from_file_location("bench_group", REPO / "bench" / "group.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _words(text: str) -> set[str]:
    """Each word, lower-cased, with and without a possessive ("Women's" gives "women" too),
    hashtags read as the words they join ("#BanBossy" gives "ban" and "bossy")."""
    found = {w.lower() for w in _WORD.findall(unhashed(text))}
    return found | {re.sub(r"['’]s$", "", w) for w in found}


def _days() -> dict[str, list[Article]]:
    if not (SHARED / "uci-news-stories-dev.csv").is_file():
        pytest.skip(
            f"shared data not found at {SHARED}: put shared/ beside the repository "
            "or name its data folder in SHARED_DATA"
        )
    uci = bench.load_uci(SHARED / "uci-news-stories-dev.csv")
    feeds = bench.load_feeds(SHARED / "real-feeds")
    days = {
        "seed day": bench.load_seed(SHARED / "seed-day.json"),
        "UCI busy day": uci,
        "mixed day": uci + feeds,
    }
    for number, day in enumerate(bench.quiet_days(uci)):
        days[f"quiet day {number}"] = day
    return {name: [a for a, _ in day] for name, day in days.items()}


@pytest.fixture(scope="module")
def drawn() -> dict[str, list[Theme]]:
    return {name: group(articles) for name, articles in _days().items()}


def test_labels_are_two_to_six_words_all_from_the_themes_headlines_and_unique(drawn) -> None:
    for name, themes in drawn.items():
        labels = [t.label for t in themes if not t.catch_all]
        assert len(labels) == len({label.lower() for label in labels}), (name, labels)
        for theme in themes:
            if theme.catch_all:
                assert theme.label == ALSO_TODAY
                continue
            words = _WORD.findall(theme.label)
            assert 2 <= len(words) <= 6, (name, theme.label)
            headlines = set().union(*(_words(a.title) for a in theme.articles))
            missing = [w for w in words if w.lower() not in headlines]
            assert not missing, (name, theme.label, missing, [a.title for a in theme.articles])


# Words seen ending or opening weak labels ("Canada Enhances", "Coming To More
# Countries", "Banks focus"): verbs and small words leave a label hanging.
_HANGING_WORDS = (
    "enhances coming focus end unveils weds hiring directed recognise miss moved told "
    "alleged rising amid amidst of to for in on at by with from and or the a an"
)
_HANGING = set(_HANGING_WORDS.split())


def test_no_label_starts_or_ends_on_a_verb_or_small_word(drawn) -> None:
    for name, themes in drawn.items():
        for theme in themes:
            if theme.catch_all:
                continue
            words = [w.lower() for w in _WORD.findall(theme.label)]
            assert words[0] not in _HANGING and words[-1] not in _HANGING, (name, theme.label)


def test_the_seed_day_draws_about_the_eight_themes_an_editor_would(drawn) -> None:
    themes = drawn["seed day"]
    named = [t for t in themes if not t.catch_all]
    assert 6 <= len(named) <= 10
    call = next(t for t in named if any("Putin Accepts" in a.title for a in t.articles))
    assert any("Energy Truce" in a.title for a in call.articles)
    for topic in ("Gaza", "Germany", "Landmine"):  # each one theme, whatever the wording
        assert sum(any(topic in a.title for a in t.articles) for t in named) == 1, topic


def test_two_tight_stories_sharing_only_their_event_stay_two_themes(drawn) -> None:
    """Sbarro's bankruptcy and Mt. Gox's share "files for bankruptcy" and nothing else."""
    for theme in drawn["UCI busy day"]:
        titles = " ".join(a.title.lower() for a in theme.articles)
        assert not ("sbarro" in titles and "gox" in titles), theme.label


def test_every_article_has_a_story_and_copies_share_their_storys_number(drawn) -> None:
    for themes in drawn.values():
        first_of = {}
        for article in (a for t in themes for a in t.articles):
            assert article.story > 0
            if article.duplicate_of is None:
                first_of[article.key] = article.story
            else:
                assert article.story == first_of[article.duplicate_of]


def test_excluding_a_word_drops_only_the_articles_that_contain_it(drawn) -> None:
    themes = drawn["seed day"]
    shown = [a for t in themes for a in t.articles if a.shown]
    mine = personalise(edition(themes), Subscriber(email="r@example.com", topics_exclude=["trump"]))

    assert mine is not None
    kept = {a.key for t in mine.themes for a in t.articles}
    word = re.compile(r"(?<!\w)trump(?!\w)", re.IGNORECASE)  # "Trump's" has it, "Trumpet" not
    with_word = {a.key for a in shown if word.search(f"{a.title} {a.summary}")}
    assert with_word and kept == {a.key for a in shown} - with_word


def test_without_topics_the_edition_is_sent_as_previewed_and_topics_reach_past_the_caps() -> None:
    from digest.group.rank import apply_caps

    gaza = [_post(n, f"Gaza ceasefire talks, day {n}", f"Wire {n}") for n in range(1, 4)]
    storm = [_post(9, "Storm Edda floods the coast", "Harbour News")]
    themes = [Theme(label="Gaza talks", articles=gaza), Theme(label="Storm Edda", articles=storm)]
    day = edition(apply_caps(themes, 1, 2))  # DIGEST_MAX_THEMES=1, 2 articles a theme

    # No topics: the very edition the preview renders, hidden headlines and all.
    assert personalise(day, Subscriber(email="r@example.com"), 1, 2) is day
    # Topics match the whole edition: a theme past the cap holds what they follow.
    storms = personalise(day, Subscriber(email="r@example.com", topics_include=["storm"]), 1, 2)
    assert storms is not None and [t.label for t in storms.themes] == ["Storm Edda"]
    assert storms.themes[0].shown and all(a.shown for a in storms.themes[0].articles)
    # ...and the caps apply again to what is left.
    talks = personalise(day, Subscriber(email="r@example.com", topics_include=["gaza"]), 1, 2)
    assert talks is not None and [t.shown for t in talks.themes] == [True]
    assert [a.shown for a in talks.themes[0].articles] == [True, True, False]


def _post(n: int, title: str, source: str = "LLVM Blog") -> Article:
    return Article(
        key=f"https://blog.example/{n}",
        title=title,
        url=f"https://blog.example/{n}",
        source=source,
        feed_url="https://blog.example/feed",
        published=datetime(2026, 3, 18, 12, tzinfo=UTC) - timedelta(hours=n),
        summary="Notes from the series on the compiler's machine scheduler and its passes.",
    )


def test_posts_whose_titles_differ_by_a_number_are_never_folded() -> None:
    titles = [
        "Machine Scheduler in LLVM - Part I",
        "Machine Scheduler in LLVM - Part II",
        "Field Notes: Hacktoberfest 2025, Week 2",
        "Field Notes: Hacktoberfest 2025, Week 3",
        "LLVM 9.0-rc1 tagged",
        "LLVM 9.0-rc2 tagged",
        "First JSON Feed Item",
        "Second JSON Feed Item",
    ]
    themes = group([_post(n, t) for n, t in enumerate(titles)])
    articles = [a for t in themes for a in t.articles]

    assert all(a.duplicate_of is None and a.shown for a in articles)
    assert len({a.story for a in articles}) == len(titles)


def test_one_report_from_two_outlets_is_still_folded() -> None:
    one = _post(1, "Machine Scheduler in LLVM - Part II")
    copy = _post(2, "Machine Scheduler in LLVM, Part II", source="Planet LLVM")
    themes = group([one, copy])
    copies = [a for t in themes for a in t.articles if a.duplicate_of]
    assert len(copies) == 1 and copies[0].story == themes[0].articles[0].story


def test_articles_with_too_little_text_never_join_a_theme() -> None:
    news = [
        _post(n, f"Storm Edda floods coastal towns as rivers burst, report {n}", f"Paper {n}")
        for n in range(3)
    ]
    thin = [_post(10, "About", "Portfolio"), _post(11, "Home", "Portfolio")]
    thin = [a.model_copy(update={"summary": ""}) for a in thin]
    themes = group(news + thin)
    assert themes[-1].catch_all
    assert {a.title for a in themes[-1].articles} >= {"About", "Home"}


def _with_catch_all() -> list[Theme]:
    def make(n: int, title: str, summary: str) -> Article:
        return Article(
            key=f"https://news.example.com/{n}",
            title=title,
            url=f"https://news.example.com/{n}",
            source=f"Source {n}",
            feed_url="https://news.example.com/feed.xml",
            published=datetime(2026, 3, 19, 6, tzinfo=UTC) - timedelta(minutes=n),
            summary=summary,
        )

    lead = make(1, "Storm Edda floods towns", "Rivers burst their banks overnight.")
    more = make(2, "Insurers brace for Storm Edda", "Claims are expected to rise.")
    stray = [
        make(3, "Study links walking to sleep", "A SUMMARY NOT TO BE SHOWN."),
        make(4, "Carmaker recalls vehicles", "ANOTHER SUMMARY NOT TO BE SHOWN."),
    ]
    return [
        Theme(label="Storm Edda", articles=[lead, more]),
        Theme(label=ALSO_TODAY, articles=stray, catch_all=True),
    ]


def test_the_catch_all_renders_as_a_plain_list_in_html_and_text() -> None:
    rendered = Renderer(settings()).render(edition(_with_catch_all()), READER)

    soup = BeautifulSoup(rendered.html, "html.parser")
    heading = next(h for h in soup.find_all("h2") if h.get_text() == ALSO_TODAY)
    section = heading.find_parent("td")
    items = [a.get_text() for a in section.find_all("a")]
    assert items == ["Study links walking to sleep", "Carmaker recalls vehicles"]
    assert section.find("h3") is None and section.find(class_="lead") is None
    assert "NOT TO BE SHOWN" not in rendered.html
    assert "Storm Edda" in soup.find("h2").get_text()  # the theme before it keeps its form

    text = rendered.text
    part = text[text.rindex(ALSO_TODAY) :]
    assert "Study links walking to sleep" in part and "Carmaker recalls vehicles" in part
    assert "More on this theme" not in part and "NOT TO BE SHOWN" not in text
    assert "More on this theme" in text[: text.rindex(ALSO_TODAY)]


def test_the_catch_all_lists_dated_reports_before_undated_pages() -> None:
    """An undated page's time is when it was first seen: it must not top the list."""
    noon, hour = datetime(2026, 3, 18, 12, tzinfo=UTC), timedelta(hours=1)
    found = [
        ("Museum returns bronze sculptures to Nigeria", noon, True),
        ("Council approves new cycle lanes downtown", noon - hour, True),
        ("Keylogg: a keyboard logger written in Rust", noon + hour, False),
    ]
    day = [
        Article(
            key=f"https://x{n}.example/",
            title=title,
            url=f"https://x{n}.example/",
            source=f"Site {n}",
            feed_url=f"https://x{n}.example/feed",
            published=when,
            dated=dated,
        )
        for n, (title, when, dated) in enumerate(found)
    ]
    (catch_all,) = [t for t in group(day) if t.catch_all]
    assert [a.title for a in catch_all.articles] == [title for title, _, _ in found]


def test_the_edition_json_marks_the_catch_all_and_gives_every_article_a_story() -> None:
    posts = [_post(1, "About"), _post(2, "Storm Edda floods coastal towns")]
    themes = group([p.model_copy(update={"summary": ""}) for p in posts])
    shown = edition_json(edition(themes))["themes"]
    assert [t["catch_all"] for t in shown] == [True]
    assert all(isinstance(a["story"], int) and a["story"] > 0 for a in shown[0]["articles"])


def _article(n: int, title: str, source: str, summary: str = "") -> Article:
    return Article(
        key=f"https://example.org/{n}",
        title=title,
        url=f"https://example.org/{n}",
        source=source,
        feed_url=f"https://{source.split()[0].lower()}.example/feed",
        published=datetime(2026, 3, 18, 12, tzinfo=UTC) - timedelta(minutes=n),
        summary=summary,
    )


def test_the_lead_is_the_widest_carried_story_told_with_its_summary() -> None:
    """The earliest copy of the main story is a bare title: the copy with a summary leads."""
    summary = "Hundreds of homes were evacuated as seawater topped the flood defences."
    articles = [
        _article(30, "Storm Edda floods coastal towns", "Wire Service"),  # earliest, no summary
        _article(20, "Storm Edda floods coastal towns", "Daily Ledger", summary),
        _article(10, "Storm Edda floods coastal towns", "Northern Courier"),
        _article(5, "Storm Edda: rail lines closed along the coast", "Global Wire", summary),
        _article(1, "Storm Edda: thousands without power", "Evening Post", summary),
    ]
    themes = group(articles)
    edda = next(t for t in themes if not t.catch_all)

    assert edda.lead.source == "Daily Ledger" and edda.lead.summary == summary
    assert set(edda.lead.also_reported_by) == {"Wire Service", "Northern Courier"}


def test_a_title_the_feed_cut_short_never_leads_where_a_whole_one_tells_the_story() -> None:
    """Two stories carried as widely, neither with a summary: the whole headline leads,
    not the later "George Zimmerman signs autographs, poses for pictures with ..."."""
    articles = [
        _article(1, "George Zimmerman signs autographs, poses for pictures with ...", "Wire"),
        _article(3, "George Zimmerman signs autographs at Orlando gun show", "Courier"),
    ]
    theme = next(t for t in group(articles) if not t.catch_all)

    assert len(theme.articles) == 2
    assert not theme.lead.title.endswith("..."), theme.lead.title


def test_a_blogs_own_stream_joins_no_news_theme_and_draws_no_news_in() -> None:
    news = [
        ("Storm Edda floods coastal towns as rivers burst", "Northern Courier"),
        ("Storm Edda: rivers burst banks, coastal towns flooded", "Daily Ledger"),
        ("Insurers brace for Storm Edda flood claims", "Global Wire"),
        ("Carmaker recalls 40,000 vehicles over faulty airbags", "Global Wire"),
        ("Airbag fault prompts recall of 40,000 cars", "Daily Ledger"),
        ("Phone maker to put Intel chip in next tablet", "Tech Daily"),
        ("Central bank holds rates as inflation eases", "Northern Courier"),
        ("Inflation eases, central bank keeps rates on hold", "Global Wire"),
    ]
    blog = [
        "Intel Core Ultra 9 285K CPU Review and Benchmarks",
        "Intel Core Ultra 7 265K CPU Review and Benchmarks",
        "AMD Ryzen 7 9800X3D CPU Review and Benchmarks",
        "Best CPUs of 2024: Intel vs AMD Benchmarks",
        "Intel Core Ultra 5 245K CPU Review and Benchmarks",
    ]
    articles = [_article(n, t, s) for n, (t, s) in enumerate(news)]
    articles += [_article(20 + n, t, "Hardware Bench Blog") for n, t in enumerate(blog)]
    themes = group(articles)

    for theme in themes:
        sources = {a.source for a in theme.articles}
        if not theme.catch_all:
            assert "Hardware Bench Blog" not in sources, (theme.label, sources)
    catch_all = next(t for t in themes if t.catch_all)
    assert {a.title for a in catch_all.articles} >= set(blog)
    storm = next(t for t in themes if any("Storm Edda" in a.title for a in t.articles))
    assert not storm.catch_all and len(storm.articles) == 3


# A city site's own news, which no other site reports: two stories of three headlines.
_CITY_STORIES = [
    "City council approves new tram line budget",
    "Tram line budget passes city council vote",
    "City council tram budget vote draws protest",
    "Harbour bridge closed for repairs until May",
    "Harbour bridge repairs close crossing until May",
    "Drivers face delays as harbour bridge closes for repairs",
]


def test_a_news_site_with_stories_of_its_own_is_no_stream() -> None:
    """Most of the City Herald's day is its own city's news, which no other site
    reports; it also reports the day's shared stories, so it is news, not a stream."""
    shared = [
        ("Storm Edda floods coastal towns as rivers burst", "Northern Courier"),
        ("Storm Edda: rivers burst banks, coastal towns flooded", "Daily Ledger"),
        ("Storm Edda floods hit coastal towns overnight", "City Herald"),
        ("Central bank holds rates as inflation eases", "Northern Courier"),
        ("Inflation eases, central bank keeps rates on hold", "Global Wire"),
        ("Central bank keeps rates on hold as inflation cools", "City Herald"),
    ]
    own = _CITY_STORIES
    elsewhere = [
        ("Carmaker recalls 40,000 vehicles over faulty airbags", "Global Wire"),
        ("Champions League holders scrape into quarter-finals", "Daily Ledger"),
        ("Measles cases rise for a third month", "Northern Courier"),
        ("Exoplanet found in habitable zone of nearby star", "Global Wire"),
        ("Museum returns bronze sculptures to Nigeria", "Daily Ledger"),
        ("Chipmaker unveils faster AI processor", "Northern Courier"),
    ]
    articles = [_article(n, t, s) for n, (t, s) in enumerate(shared + elsewhere)]
    articles += [_article(20 + n, t, "City Herald") for n, t in enumerate(own)]
    themes = group(articles)

    themed = {a.title for t in themes if not t.catch_all for a in t.articles}
    assert set(own) <= themed, [(t.label, [a.title for a in t.articles]) for t in themes]


def test_no_real_feed_entry_sits_under_a_news_heading_beside_the_own_set() -> None:
    """Two OpenStreetMap posts drawn into "EU migration pact" once made their blog
    count as sharing the news, and kept them there."""
    _days()  # skips, saying why, without the shared data
    own = [a for a, _ in bench.load_own(REPO / "tests" / "data" / "headlines.csv")]
    feeds = [a for a, _ in bench.load_feeds(SHARED / "real-feeds")]
    posts = {a.key for a in feeds}
    for theme in group(own + feeds):
        keys = {a.key for a in theme.articles}
        if not theme.catch_all and keys & posts:
            assert keys <= posts, (theme.label, [a.title for a in theme.articles])


@pytest.mark.parametrize("seed", [2, 3, 6])
def test_of_two_news_sites_neither_is_taken_for_a_blog(seed: int) -> None:
    """Two sites with no story in common (an operator's two feeds): each one's several
    reports of a story made its articles twice as alike as the day's, and one site
    went whole to "Also today" on these days."""
    _days()  # skips, saying why, without the shared data
    uci = SHARED / "uci-news-stories-dev.csv"
    day = [a for a, _ in bench.two_site_day(bench.load_uci(uci), bench.uci_categories(uci), seed)]
    themed = {a.key for t in group(day) if not t.catch_all for a in t.articles}
    for site in {a.source for a in day}:
        own = [a.key for a in day if a.source == site]
        assert 3 * len(themed.intersection(own)) >= len(own), (site, len(own))


def test_blogs_alone_make_no_theme_of_several_blogs_posts() -> None:
    """The real feeds alone: with the likeness ratio alone raised to keep two news
    sites news, Kagi's release notes, OSM changesets and OSM Polska's posts made one
    59-post theme, "Changeset 159721895"."""
    _days()  # skips, saying why, without the shared data
    feeds = [a for a, _ in bench.load_feeds(SHARED / "real-feeds")]
    for theme in group(feeds):
        if not theme.catch_all:
            posts = Counter(a.source for a in theme.articles)
            assert sum(n >= 3 for n in posts.values()) <= 1, (theme.label, posts)


def test_a_news_site_alone_among_many_blog_posts_is_no_stream() -> None:
    """A first run can find a shop's and a blog's undated pages beside one news site:
    the site's stories still make themes, the posts go to "Also today"."""
    news = [
        *_CITY_STORIES,
        "Museum returns bronze sculptures to Nigeria",
        "Measles cases rise for a third month",
    ]
    cpus = ["Intel Core Ultra 9 285K", "Intel Core Ultra 7 265K", "AMD Ryzen 7 9800X3D"]
    cpus += ["AMD Ryzen 9 9950X", "Intel Core Ultra 5 245K", "AMD Ryzen 5 9600X"]
    records = ["Blue Train by John Coltrane", "Kind of Blue by Miles Davis", "Mingus Ah Um"]
    records += ["Moanin' by Art Blakey", "Time Out by Dave Brubeck", "Speak No Evil by Shorter"]
    articles = [_article(n, t, "City Herald") for n, t in enumerate(news)]
    articles += [
        _article(20 + n, f"{c} CPU Review and Benchmarks", "Bench Blog") for n, c in enumerate(cpus)
    ]
    articles += [
        _article(40 + n, f'"{r}" on Blue Note, first pressing', "Vinyl Shop")
        for n, r in enumerate(records)
    ]
    themes = group(articles)

    themed = {a.title for t in themes if not t.catch_all for a in t.articles}
    assert set(news[:6]) <= themed, [(t.label, [a.title for a in t.articles]) for t in themes]
    assert all(a.source == "City Herald" for t in themes if not t.catch_all for a in t.articles)


def test_a_single_news_page_is_no_stream() -> None:
    titles = [
        "Storm Edda floods coastal towns as rivers burst",
        "Insurers brace for Storm Edda flood claims",
        "Storm Edda leaves thousands without power",
        "Central bank holds rates as inflation eases",
        "Inflation eases, central bank keeps rates on hold",
    ]
    themes = group([_article(n, t, "World news page") for n, t in enumerate(titles)])
    named = [t for t in themes if not t.catch_all]
    assert len(named) == 2, [(t.label, [a.title for a in t.articles]) for t in themes]


@pytest.mark.parametrize(
    ("headlines", "label"),
    [
        # A spelling in capitals gives way to the usual one.
        (
            [
                "LENA DUNHAM APOLOGIZES FOR JOKE",
                "Lena Dunham apologizes on Twitter",
                "Lena Dunham joke draws criticism",
            ],
            "Lena Dunham apologizes for joke",
        ),
        # "iOS" keeps its case at the head of a label.
        (["iOS 7.1 released for iPhones", "Apple ships iOS 7.1 to iPads"], "iOS 7.1"),
        # A verb of one headline names nothing; joining words are free.
        (
            [
                "Canada Enhances Arctic Defense Amid U.S. Tensions",
                "King Charles Extends Support to Canada Amid Rising Tensions",
            ],
            "Canada Amid Rising Tensions",
        ),
        # Nor does a label end on any verb form or adverb, listed or not.
        (
            [
                "Stacy Keibler Marries Jared Pobre In Secret Ceremony",
                "Stacy Keibler marries tech entrepreneur",
                "George Clooney's ex Stacy Keibler marries boyfriend",
            ],
            "Stacy Keibler",
        ),
        # Nor does one part words the headlines always write together ("dressing room").
        (
            [
                "Teenage Fan Sneaks Into Miley Cyrus' Dressing Room",
                "Fan sneaks into Miley Cyrus' dressing room in Vancouver",
                "Miley Cyrus' dressing room invaded by teenage fan",
            ],
            "Miley Cyrus' Dressing Room",
        ),
        # Nor does one start on the verb after its subject, nor end on an adjective
        # before its noun ("Recalls 40000 vehicles", "vehicles over faulty").
        (
            [
                "Carmaker recalls 40000 vehicles over faulty airbags",
                "Airport baggage handlers announce Easter strike",
            ],
            "Carmaker recalls 40000 vehicles",
        ),
        # A noun scikit-learn's stop list holds ("call", "show", "bill") names a topic.
        (
            [
                "Trump and Putin's Call: A Diplomatic Balancing Act on Ukraine",
                "Trump and Putin's Call Yields Energy Truce, But Ceasefire Remains Elusive",
            ],
            "Trump and Putin's Call",
        ),
        # Nor does a run holding a verb end on the subject of the next: "Study finds
        # elephants" out of "Study finds elephants can gauge threat".
        (
            [
                "Elephants can gauge threat from human voices: Study",
                "Horton really does hear a Who: Study finds elephants can discern among  ...",
            ],
            "Elephants can gauge threat",
        ),
        # A people's adjective is one too, in any case; in Title Case no other
        # capitalised word is known to be ("'Ban Bossy' Campaign" names one).
        (
            [
                "DigitalGlobe aids in search for missing Malaysian jet",
                "Crowds join search for missing Malaysian jet",
                "Satellite firm joins the search for Malaysian airliner",
            ],
            "Search for missing Malaysian jet",
        ),
        (
            [
                "Beyoncé, Jennifer Garner Unite for 'Ban Bossy' Girl Empowerment Campaign",
                "Sandberg Launches 'Ban Bossy' Effort",
            ],
            "Ban Bossy",
        ),
        # A title's full stop ends no phrase: "Mt. Gox" is one name, and no label ends
        # on "Mt." ...
        (
            ["Bitcoin exchange Mt. Gox seeks protection", "Bitcoin exchange Mt. Gox shuts down"],
            "Bitcoin exchange Mt. Gox",
        ),
        (
            ["Mt. Gox files for US bankruptcy", "Failed exchange Mt. Gox files in US"],
            "Mt. Gox",
        ),
        # ...and two wordings of one long headline, which tie every word to the next,
        # still get a label (without the ties) rather than none.
        (
            [
                "WATCH: Tesla Gigafactory Nevada battery plant site selection shortlist",
                "Tesla Gigafactory Nevada battery plant site selection shortlist - Reuters",
            ],
            "Tesla Gigafactory Nevada battery plant site",
        ),
        (
            [
                "Men's Wearhouse Finally Buys Jos. A. Bank",
                "Men's Wearhouse finally wins rival",
            ],
            "Men's Wearhouse",
        ),
        # A plural's possessive keeps its apostrophe; a closing quote does not.
        (
            [
                "Parents' Smartphones Interrupt Healthy Family Interactions",
                "Parents' smartphones distract them at meals",
                "Why parents' smartphones hurt kids",
            ],
            "Parents' Smartphones",
        ),
        (
            ["'Cosmos' Reboot Draws 8.5 Million Viewers", "Fox's 'Cosmos' reboot a hit"],
            "Cosmos Reboot",
        ),
        (
            [
                "'Frozen' fans' favourite song tops the charts",
                "'Frozen' fans' favourite song wins an Oscar",
            ],
            "Frozen fans' favourite song",
        ),
        # A hashtag offers the words it joins.
        (
            [
                "Why Sheryl Sandberg wants us to #BanBossy",
                "Sandberg launches #BanBossy campaign",
                "Celebrities back #BanBossy",
            ],
            "Ban Bossy",
        ),
        # An infinitive ends no label.
        (
            ["Google to Launch Android Wear", "Google to launch smartwatch platform"],
            "Google to Launch Android",
        ),
        # -ing and -ed forms are as often nouns and names: "the Fed", "defence spending".
        (
            [
                "Fed tapering continues",
                "Yellen signals Fed tapering",
                "Markets shrug off Fed tapering",
            ],
            "Fed tapering",
        ),
        (
            ["Defence spending vote passes in Berlin", "Germany backs defence spending rise"],
            "Defence spending",
        ),
        # A label never runs from one clause into the next ("Cairo as aid").
        (
            [
                "Gaza: negotiators back in Cairo as aid deliveries stall",
                "Gaza Ceasefire Talks Resume in Cairo",
            ],
            "Negotiators back in Cairo",
        ),
        # A name joined by "of" is never cut, and its small words stay small.
        (
            [
                "No Netflix required: 'House of Cards' now available to Comcast subscribers",
                "Comcast Gives Customers House Of Cards Without Netflix",
                "Comcast gets faster Netflix, offers House of Cards without Netflix",
            ],
            "House of Cards without Netflix",
        ),
        # "&" joins as "and" does.
        (
            ["Feynman, Sagan & Tyson", "Tyson and Sagan on science", "Sagan & Tyson on TV"],
            "Sagan & Tyson",
        ),
        # A noun lemminflect lists only as a verb still ends a label where no plural
        # subject comes before it.
        (
            ["Senators head to yoga retreat", "Obama joins yoga retreat", "A yoga retreat in Maui"],
            "Yoga retreat",
        ),
    ],
)
def test_labels_read_as_an_editor_would_write_them(headlines: list[str], label: str) -> None:
    labeller = Labeller([*headlines, "Unrelated weather news", "Stocks close higher"])
    assert labeller.label(list(range(len(headlines)))) == label


@pytest.mark.parametrize(
    ("headlines", "not_at_the_edge"),
    [
        (["Men's Wearhouse to Buy Jos. A. Bank", "Men's Wearhouse and Jos. A. Bank"], "jos"),
        (["Crude Oil Weekly 3/10/14", "Crude Oil Weekly 3/10/14 edition"], "14"),
        # In sentence case, capitalised words side by side are one name: "Xbox One".
        (
            [
                "Microsoft banks on Titanfall release to fire up Xbox One sales",
                "Titanfall release to fire up Xbox One, Microsoft hopes",
            ],
            "xbox",
        ),
        # ... a headline whose lower-case words are only "is" and "not" included.
        (
            [
                "This is not 1968 and Russia is not the Soviet Union",
                "Russia's Political Tool; Gazprom Threatens To Increase Gas Prices",
            ],
            "soviet",
        ),
        (["Sbarro files Chapter 11 bankruptcy", "Sbarro in Chapter 11 bankruptcy again"], "11"),
        (
            [
                "Russia Threatens To Increase Gas Prices By 37",
                "Ukraine Gas Prices By 37 Percent Higher, Gazprom Says",
            ],
            "37",
        ),
        (
            [
                "Men's Wearhouse wins Jos. A. Bank for 1.8",
                "Jos. A. Bank goes for 1.8 in the end",
            ],
            "1.8",
        ),
        # A word English uses only as a verb ends no label after its plural subject.
        (
            [
                "Elephants prove discerning listeners of us humans",
                "Elephants prove clever",
                "Smart elephants",
            ],
            "prove",
        ),
    ],
)
def test_no_label_starts_or_ends_inside_an_abbreviation_a_date_or_a_phrase(
    headlines: list[str], not_at_the_edge: str
) -> None:
    label = Labeller([*headlines, "Unrelated weather news"]).label(list(range(len(headlines))))
    words = label.lower().split()
    assert len(words) >= 2, label
    assert not_at_the_edge not in (words[0], words[-1]), label


def test_a_word_only_ever_followed_by_one_figure_keeps_it() -> None:
    """ "Chapter 11" is one name even in one headline, where "11" is common on the day;
    "Test Entry 1" and "Test Entry 2" name a series."""
    day = [
        *("Apollo 11 crew honoured", "11 killed in storm", "Top 11 phones"),
        *("Retailer weighs bankruptcy", "Bankruptcy court hears airline case"),
        *("Unrelated weather news", "Stocks close higher", "Miley Cyrus fan arrested"),
    ]
    sbarro = [
        "Sbarro Files For Chapter 11 Bankruptcy",
        "Mt. Gox files for US bankruptcy to halt class...",
        "Sbarro again files for Ch. 11 reorganization",
    ]
    assert Labeller([*sbarro, *day]).label([0, 1, 2]) == "Sbarro Files For Chapter 11"
    entries = ["Test Entry 1", "Test Entry 2", "Test Entry 3"]
    assert Labeller([*entries, *day]).label([0, 1, 2]) == "Test Entry"


def test_may_in_capitals_is_a_month_not_a_modal() -> None:
    """After a modal no label starts or ends on a verb ("Europe must wake"); "May" in
    capitals is the month, and "jobs" after it may end one."""
    headlines = [
        "US May jobs report beats forecasts",
        "May jobs report: payrolls rise",
        "Payrolls jump in May jobs report",
    ]
    labeller = Labeller([*headlines, "Unrelated weather news", "Stocks close higher"])
    assert "May jobs" in labeller.label([0, 1, 2])


def test_a_names_words_give_way_rather_than_leave_a_theme_unnamed() -> None:
    """ "Xbox One" cannot be a label ("One" tells nothing): rather than send the theme
    to "Also today", a label may then end on "Xbox"."""
    headlines = [
        "Titanfall: Respawn 'Looking To Patch Xbox One Resolution To 1080p'",
        "Xbox One updated with live game streaming",
        "Titanfall Released in North America, New Video Available",
        "Microsoft's Hometown Brings In Titanfall Right",
    ]
    labeller = Labeller([*headlines, "Unrelated weather news", "Stocks close higher"])
    label = labeller.label([0, 1, 2, 3])
    assert "Xbox" in label.split(), label


@pytest.mark.parametrize(
    "headlines",
    [
        ["On topic: Tech news to know now", "Finance News Update, what you need to know"],
        # Nor is a clause cut after a modal ("Europe must wake").
        [
            "Bromund: Europe must wake up to new danger",
            "Europe reaches crunch point on banking union",
            "Poland: German reliance on Russian gas threatens Europe",
        ],
    ],
)
def test_headlines_sharing_no_run_of_words_get_no_label(headlines: list[str]) -> None:
    """Headlines sharing one word are no theme an editor could name: never two words
    side by side ("Topic Tech") nor a cut clause; the caller sends them to "Also today"."""
    labeller = Labeller([*headlines, "Unrelated weather report", "Stocks close higher"])
    assert labeller.label(list(range(len(headlines)))) == ""


_LABELS_OF_THE_BUSY_DAY = """
import json, sys
sys.path.insert(0, sys.argv[1])
import group as bench
from pathlib import Path
from digest.group import group
day = bench.load_uci(Path(sys.argv[2]) / "uci-news-stories-dev.csv")
print(json.dumps([(t.label, [a.key for a in t.articles]) for t in group([a for a, _ in day])]))
"""


def test_the_same_day_gives_the_same_themes_in_every_process() -> None:
    """String hashing differs between processes (PYTHONHASHSEED): no label may hang on
    the order a set is walked in, as a float sum over a set once did."""
    _days()  # skips, saying why, without the shared data
    runs = []
    for seed in ("1", "16", "19"):  # 16 and 19 once named themes unlike 1
        done = subprocess.run(
            [sys.executable, "-c", _LABELS_OF_THE_BUSY_DAY, str(REPO / "bench"), str(SHARED)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(done.stdout)
    assert runs[0] == runs[1] == runs[2]
    assert len(runs[0]) > 1000  # the themes of 2,821 headlines, not an empty answer
