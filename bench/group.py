"""Benchmark: how well and how fast `digest.group` draws themes, on real headlines.

    python bench/group.py [--shared ../shared/data] [--size 20000]

Quality: B-cubed precision, recall and F1 (the catch-all section counted as
grouping nothing: each of its articles alone) and the adjusted Rand index,
each beside "every article alone", "one group per source" and the same
grouping without the embedding model (words only), run on the same data in
the same process, on:
- the seed day (seed-day.json, the 17 headlines of its window, by `theme`);
- the UCI dev stories as one busy day: all, the half the settings were tuned
  on, and the held-out half;
- twelve quiet days of 8 random stories with 1 to 4 headlines each, from each
  half (mean F1);
- a mixed day: the UCI dev stories plus every entry of real-feeds/ as
  unrelated items (the share of those entries outside every news theme);
- tests/data/headlines.csv.
Beside them, the issue's one-liner (the floor to beat): wordllama and plain TF-IDF
half and half, average linkage, one fixed threshold.
One configuration for every data set: nothing here is tuned per set.
Speed: seconds and peak memory to group --size headlines (the labelled ones
plus generated variants), with the ratio to just vectorising the same
headlines in the same process, and whether a second run gives the same result.
Shared data is read by path, never copied here.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html
import importlib
import json
import os
import random
import re
import resource
import sys
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.group import group  # noqa: E402
from digest.group.text import terms  # noqa: E402
from digest.models import Article  # noqa: E402

SHARED = Path(os.environ.get("SHARED_DATA") or ROOT.parent / "shared" / "data")
OWN_DATA = ROOT / "tests" / "data" / "headlines.csv"
QUIET_DAYS = 12
MORE_DRAWS = 20


def load_seed(path: Path) -> list[tuple[Article, str]]:
    """The seed day's headlines inside its window, with the page's `**` artifacts as they are."""
    page = json.loads(path.read_text(encoding="utf-8"))
    now = datetime.fromisoformat(page["now"])
    out = []
    for number, item in enumerate(page["items"]):
        published = parsedate_to_datetime(item["published"])
        if now - published > timedelta(hours=page["window_hours"]):
            continue
        article = Article(
            key=f"https://seed.example/{number}",
            title=item["title"],
            url=f"https://seed.example/{number}",
            source="World news page",
            feed_url="https://seed.example/feed",
            published=published,
        )
        out.append((article, item["theme"]))
    return out


_TAG = re.compile(r"<[^>]+>")


def load_feeds(folder: Path) -> list[tuple[Article, str]]:
    """Every entry of real-feeds/ (as its parser's JSON lists it), each its own story."""
    out = []
    for path in sorted(folder.glob("*.json")):
        feed = json.loads(path.read_text(encoding="utf-8"))
        if "entries" not in feed:
            continue  # a JSON Feed source file: its parsed twin is *.expected.json
        name = path.name.split(".")[0]
        for number, entry in enumerate(feed["entries"]):
            text = html.unescape(_TAG.sub(" ", entry.get("description") or ""))
            article = Article(
                key=f"feed:{name}:{number}",
                title=entry.get("title") or "",
                url=entry.get("link") or f"https://{name}.example/{number}",
                source=feed["feed"].get("title") or name,
                feed_url=f"https://{name}.example/feed",
                published=datetime(2014, 3, 11, tzinfo=UTC),
                summary=" ".join(text.split())[:300],
            )
            out.append((article, f"feed:{name}:{number}"))
    return out


def quiet_days(data: list[tuple[Article, str]], seed: int = 1) -> list[list[tuple[Article, str]]]:
    """QUIET_DAYS days, each 8 random stories with 1 to 4 of their headlines."""
    rng = random.Random(seed)
    by_story: dict[str, list[tuple[Article, str]]] = {}
    for article, story in data:
        by_story.setdefault(story, []).append((article, story))
    names = sorted(by_story)
    days = []
    for _ in range(QUIET_DAYS):
        day = []
        for story in rng.sample(names, 8):
            day += rng.sample(by_story[story], min(len(by_story[story]), rng.randint(1, 4)))
        days.append(day)
    return days


def load_uci(path: Path) -> list[tuple[Article, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        published = datetime.fromtimestamp(int(row["TIMESTAMP"]) / 1000, UTC)
        article = Article(
            key=f"{row['ID']}:{row['URL']}",
            title=row["TITLE"],
            url=row["URL"],
            source=row["PUBLISHER"],
            feed_url=f"https://{row['HOSTNAME']}/feed",
            published=published,
        )
        out.append((article, row["STORY"]))
    random.Random(0).shuffle(out)  # the file is sorted by story
    return out


def load_own(path: Path) -> list[tuple[Article, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for number, row in enumerate(rows):
        article = Article(
            key=f"https://example.org/{number}",
            title=row["title"],
            url=f"https://example.org/{number}",
            source=row["source"],
            feed_url="https://example.org/feed",
            published=datetime.fromisoformat(row["published"]),
            summary=row["summary"],
        )
        out.append((article, row["story"]))
    return out


def partition(themes) -> dict[str, str]:
    """Cluster id per article key: one per theme, each catch-all article alone."""
    out = {}
    for number, theme in enumerate(themes):
        for article in theme.articles:
            alone = theme.catch_all
            out[article.key] = f"single:{article.key}" if alone else f"theme:{number}"
    return out


def bcubed(predicted: list[str], gold: list[str]) -> tuple[float, float, float]:
    pairs = Counter(zip(predicted, gold, strict=True))
    sizes_p, sizes_g = Counter(predicted), Counter(gold)
    n = len(gold)
    precision = sum(c * c / sizes_p[p] for (p, _), c in pairs.items()) / n
    recall = sum(c * c / sizes_g[g] for (_, g), c in pairs.items()) / n
    return precision, recall, 2 * precision * recall / (precision + recall)


def words_only(articles: list[Article]) -> list:
    """The same grouping with no meaning (embedding share 0): what the model adds."""
    cluster = importlib.import_module("digest.group.cluster")
    share = cluster.MEANING_WEIGHT
    cluster.MEANING_WEIGHT = 0.0
    try:
        return group(articles)
    finally:
        cluster.MEANING_WEIGHT = share


def quiet_f1(day: list[tuple[Article, str]]) -> float:
    found = partition(group([a for a, _ in day]))
    return bcubed([found[a.key] for a, _ in day], [g for _, g in day])[2]


# The floor to beat: wordllama cosine and plain TF-IDF half and half, average
# linkage, one fixed threshold. 0.16 is the threshold with the best mean (and best
# worst) F1 over the tuning half as a busy day, its quiet days and the seed day.
ONE_LINER_FLOOR = 0.16
ONE_LINER_MAX = 5000


def one_liner(articles: list[Article]) -> list[str]:
    """The issue's one-liner grouping: a cluster id per article, lone ones alone."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    from sklearn.feature_extraction.text import TfidfVectorizer

    from digest.group.embed import embed

    texts = [f"{a.title} {a.summary}" for a in articles]
    meaning = embed(texts)
    words = TfidfVectorizer().fit_transform(texts)
    distance = 1.0 - (0.5 * (meaning @ meaning.T) + 0.5 * (words @ words.T).toarray())
    distance = distance.clip(0.0, 2.0)
    distance.flat[:: len(texts) + 1] = 0.0
    tree = linkage(squareform(distance, checks=False), method="average")
    labels = fcluster(tree, t=1.0 - ONE_LINER_FLOOR, criterion="distance")
    sizes = Counter(labels)
    return [
        f"c{label}" if sizes[label] > 1 else a.key
        for a, label in zip(articles, labels, strict=True)
    ]


def score(name: str, data: list[tuple[Article, str]], quiet: bool = False) -> float:
    articles = [a for a, _ in data]
    gold = [g for _, g in data]
    themes = group(articles)
    found = partition(themes)
    if quiet:
        plain = partition(words_only(articles))
        return (
            bcubed([found[a.key] for a in articles], gold)[2],
            bcubed([a.key for a in articles], gold)[2],
            bcubed([plain[a.key] for a in articles], gold)[2],
            bcubed(one_liner(articles), gold)[2],
        )
    plain = partition(words_only(articles))
    methods = {
        "digest.group": [found[a.key] for a in articles],
        "same without meaning (words)": [plain[a.key] for a in articles],
        "baseline: every article alone": [a.key for a in articles],
        "baseline: one group per source": [a.source for a in articles],
    }
    if len(articles) <= ONE_LINER_MAX:  # an n-by-n matrix: 20,000 headlines would take 3 GB
        methods[f"issue's one-liner (floor {ONE_LINER_FLOOR})"] = one_liner(articles)
    print(f"\n{name}: {len(articles)} headlines, {len(set(gold))} stories")
    print(f"  {'method':32s} {'B3-P':>6s} {'B3-R':>6s} {'B3-F1':>6s} {'ARI':>6s}")
    f1 = 0.0
    for method, predicted in methods.items():
        p, r, f = bcubed(predicted, gold)
        ari = adjusted_rand_score(gold, predicted)
        print(f"  {method:32s} {p:6.3f} {r:6.3f} {f:6.3f} {ari:6.3f}")
        f1 = f if method == "digest.group" else f1
    share, themed = on_topic(themes, dict(zip((a.key for a in articles), gold, strict=True)))
    print(f"  on topic: {share:.1%} of {themed} themed articles are on their theme's main story")
    return f1


def on_topic(themes, gold: dict[str, str]) -> tuple[float, int]:
    """Share of the articles in named themes whose story is their theme's most common one."""
    on, themed = 0, 0
    for theme in themes:
        if theme.catch_all:
            continue
        stories = Counter(gold[a.key] for a in theme.articles)
        on += stories.most_common(1)[0][1]
        themed += len(theme.articles)
    return (on / themed if themed else 1.0), themed


def mixed(data: list[tuple[Article, str]], feeds: list[tuple[Article, str]]) -> None:
    """The UCI day with every real-feed entry mixed in: those must stay out of news themes.

    Counted strictly: an entry in any theme that also holds a news headline
    counts against; so does a news headline in a theme of entries (that theme
    then holds news). The catch-all line says how many are in no theme at all.
    """
    themes = group([a for a, _ in data + feeds])
    entries = {a.key for a, _ in feeds}
    strict = alone = 0
    for theme in themes:
        own = sum(a.key in entries for a in theme.articles)
        if theme.catch_all or own == len(theme.articles):
            strict += own
        if theme.catch_all:
            alone += own
    score("mixed day: UCI dev + real-feeds entries as unrelated items", data + feeds)
    n = len(entries)
    print(
        f"  real-feed entries in no theme holding any news headline: {strict}/{n} = "
        f"{strict / n:.1%} (target >= 98%)\n"
        f"  real-feed entries in the catch-all, in no theme at all: {alone}/{n} = {alone / n:.1%}"
    )


NEWS_SITES = ["BBC", "NYT", "Al Jazeera", "DW", "NPR", "AllAfrica"]
SITE_DAYS = 8


def site_day(
    data: list[tuple[Article, str]], feeds: list[tuple[Article, str]], seed: int
) -> list[tuple[Article, str]]:
    """A day of six news sites and the real-feed blogs, built from UCI headlines:
    12 stories every site may report (3-12 headlines each, sites drawn at random)
    and 24 stories each one site's own (1-6 headlines), as a site's city or
    country news is."""
    rng = random.Random(seed)
    by_story: dict[str, list[Article]] = {}
    for article, story in data:
        by_story.setdefault(story, []).append(article)
    names = sorted(by_story)
    rng.shuffle(names)
    day = []
    for story in names[:12]:
        for article in rng.sample(by_story[story], min(len(by_story[story]), rng.randint(3, 12))):
            day.append((article.replace(source=rng.choice(NEWS_SITES)), story))
    for number, story in enumerate(names[12:36]):
        site = NEWS_SITES[number % len(NEWS_SITES)]
        for article in rng.sample(by_story[story], min(len(by_story[story]), rng.randint(1, 6))):
            day.append((article.replace(source=site), story))
    return day + feeds


def site_days(data: list[tuple[Article, str]], feeds: list[tuple[Article, str]]) -> None:
    """News sites with stories of their own must stay news: none taken for a blog's stream."""
    found, alone, floor, lost = [], [], [], 0
    for seed in range(SITE_DAYS):
        day = site_day(data, feeds, seed)
        gold = [g for _, g in day]
        themes = group([a for a, _ in day])
        part = partition(themes)
        found.append(bcubed([part[a.key] for a, _ in day], gold)[2])
        alone.append(bcubed([a.key for a, _ in day], gold)[2])
        floor.append(bcubed(one_liner([a for a, _ in day]), gold)[2])
        catch_all = {a.key for t in themes if t.catch_all for a in t.articles}
        news = [a for a, story in day if not story.startswith("feed:")]
        lost = max(lost, sum(a.key in catch_all for a in news) / len(news))
    print(
        f"\n{SITE_DAYS} days of six news sites + real-feed entries, each site with stories of "
        f"its own: mean B3-F1 {sum(found) / len(found):.3f} ({min(found):.3f} to "
        f"{max(found):.3f}; every article alone {sum(alone) / len(alone):.3f}; issue's "
        f"one-liner {sum(floor) / len(floor):.3f}); at most "
        f"{lost:.0%} of a day's news headlines in the catch-all"
    )


def one_site_days(data: list[tuple[Article, str]], feeds: list[tuple[Article, str]]) -> None:
    """One news site among many blog posts (a first run that finds undated pages): the
    site's stories must still make themes, as they do with no posts beside them."""

    def lost(site: list[Article], day: list[Article]) -> int:
        catch_all = {a.key for t in group(day) if t.catch_all for a in t.articles}
        return sum(a.key in catch_all for a in site)

    beside = alone = total = 0
    for day in quiet_days(data):
        site = [article.replace(source="City Herald") for article, _ in day]
        beside += lost(site, site + [a for a, _ in feeds])
        alone += lost(site, site)
        total += len(site)
    print(
        f"\n{QUIET_DAYS} quiet days of one news site + real-feed entries: {beside}/{total} "
        f"news headlines in the catch-all ({alone} with no posts beside them)"
    )


def tuning_half(story: str) -> bool:
    """Stories split by a hash of their id: half to tune on, half held out."""
    return hashlib.sha256(story.encode()).digest()[0] % 2 == 0


PREFIXES = ["", "", "", "UPDATE 1-", "UPDATE 2-", "WATCH: ", "REPORT: "]
SUFFIXES = ["", "", " - Reuters", " | Business Insider", " (VIDEO)", " - report", "  ..."]


def variants(
    data: list[tuple[Article, str]], size: int, seed: int = 1
) -> list[tuple[Article, str]]:
    """`size` headlines: the labelled ones, then rewordings and mixes within their story.

    Half the extra headlines are wire-copy edits of one headline (prefix,
    suffix, a word dropped, case changed: near-duplicates); the other half
    splice two headlines of the same story (new wording, same story).
    """
    rng = random.Random(seed)
    by_story: dict[str, list[Article]] = {}
    for article, story in data:
        by_story.setdefault(story, []).append(article)
    sources = sorted({a.source for a, _ in data})
    out = list(data)
    while len(out) < size:
        base, story = data[rng.randrange(len(data))]
        words = base.title.split()
        if rng.random() < 0.5:
            if len(words) > 4:
                del words[rng.randrange(1, len(words))]
            title = rng.choice(PREFIXES) + " ".join(words) + rng.choice(SUFFIXES)
            if rng.random() < 0.3:
                title = title.upper() if rng.random() < 0.2 else title.title()
        else:
            other = rng.choice(by_story[story]).title.split()
            cut = len(words) // 2
            title = " ".join(words[:cut] + other[len(other) // 2 :])
        n = len(out)
        copy = base.model_copy(
            update={
                "key": f"variant:{n}",
                "url": f"https://example.org/v/{n}",
                "title": title,
                "source": rng.choice(sources),
                "published": base.published + timedelta(minutes=rng.randint(-120, 120)),
            }
        )
        out.append((copy, story))
    return out


def timing(articles: list[Article]) -> None:
    # The floor is scikit-learn's vectoriser, which digest's own tfidf reproduces bit
    # for bit: a reference that does not move when digest's code gets faster.
    vectoriser = TfidfVectorizer(analyzer=terms, sublinear_tf=True, dtype=np.float32)
    began = time.perf_counter()
    vectoriser.fit_transform([f"{a.title} {a.summary}" for a in articles])
    floor = time.perf_counter() - began

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    began, cpu = time.perf_counter(), time.process_time()
    themes = group(articles)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    tracemalloc.start()  # a second run, traced: slower, so not the one timed
    again = group(articles)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    named = sum(not t.catch_all for t in themes)
    print(f"\nscale: {len(articles)} headlines -> {named} themes")
    print(f"  group():            {seconds:6.2f} s wall, {cpu:.2f} s CPU (target < 5 s)")
    print(f"  vectorising alone:  {floor:6.2f} s   ratio group/vectorise = {seconds / floor:.1f}x")
    print(f"  peak traced memory: {traced_peak / 2**20:6.0f} MiB (Python and numpy allocations)")
    print(
        f"  peak process RSS:   {rss:6.0f} MiB (whole process, {rss_before:.0f} MiB before "
        "grouping; target < 1024)"
    )
    same = [(t.label, [a.key for a in t.articles]) for t in themes] == [
        (t.label, [a.key for a in t.articles]) for t in again
    ]
    print(f"  same result on a second run: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--size", type=int, default=20_000)
    args = parser.parse_args()
    uci = args.shared / "uci-news-stories-dev.csv"
    if not uci.is_file():
        sys.exit(f"bench/group.py: no shared data at {args.shared}; pass --shared PATH")

    score("seed day (target F1 >= 0.90)", load_seed(args.shared / "seed-day.json"))
    data = load_uci(uci)
    score("UCI dev as one busy day (target F1 >= 0.88)", data)
    score("UCI dev, tuning half", [d for d in data if tuning_half(d[1])])
    score("UCI dev, held-out half", [d for d in data if not tuning_half(d[1])])
    halves = {
        "all stories": data,
        "tuning half": [d for d in data if tuning_half(d[1])],
        "held-out half": [d for d in data if not tuning_half(d[1])],
    }
    for name, stories in halves.items():
        days = quiet_days(stories)
        found = [score("", day, quiet=True) for day in days]
        mean, alone, plain, floor = (sum(f[i] for f in found) / len(found) for i in range(4))
        print(
            f"\nquiet days, UCI dev {name}: {QUIET_DAYS} days of 8 stories x 1-4 headlines, "
            f"mean B3-F1 {mean:.3f} (every article alone {alone:.3f}; without meaning "
            f"{plain:.3f}; issue's one-liner {floor:.3f}; target >= 0.92)"
        )
        # One draw of 12 days moves by a few hundredths: more draws show how much.
        draws = [
            sum(quiet_f1(day) for day in quiet_days(stories, draw)) / QUIET_DAYS
            for draw in range(2, 2 + MORE_DRAWS)
        ]
        print(
            f"  the same over {MORE_DRAWS} more draws ({MORE_DRAWS * QUIET_DAYS} days): mean "
            f"B3-F1 {sum(draws) / len(draws):.3f}; per draw of {QUIET_DAYS} days "
            f"{min(draws):.3f} to {max(draws):.3f}, {sum(d >= 0.92 for d in draws)} of "
            f"{MORE_DRAWS} at 0.92 or more"
        )
    if (args.shared / "real-feeds").is_dir():
        feeds = load_feeds(args.shared / "real-feeds")
        mixed(data, feeds)
        site_days(data, feeds)
        one_site_days(data, feeds)
    if OWN_DATA.is_file():
        score(f"own set ({OWN_DATA.relative_to(ROOT)})", load_own(OWN_DATA))
    big = variants(data, args.size)
    timing([a for a, _ in big])
    score(f"{len(big)} headlines with generated variants", big)


if __name__ == "__main__":
    main()
