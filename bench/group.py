"""Benchmark: how well and how fast `digest.group` groups real headlines.

    python bench/group.py [--data PATH] [--size 20000]

Quality: B-cubed precision, recall and F1 and the adjusted Rand index against
the story labels of the UCI News Aggregator sample (read from --data, never
copied here), on all of it, on the half of the stories the thresholds were
tuned on and on the held-out half, and on tests/data/headlines.csv; each
beside two baselines run on the same data (every article alone; one group
per source). Speed: seconds and peak memory to group --size headlines (the
labelled ones plus generated variants), with the ratio to just vectorising
the same headlines in the same process.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
import resource
import sys
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.group import OTHER_NEWS, group  # noqa: E402
from digest.group.vectors import tfidf  # noqa: E402
from digest.models import Article  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "uci-news-stories-dev.csv"
OWN_DATA = ROOT / "tests" / "data" / "headlines.csv"


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
    """Cluster id per article key: one per theme, each 'Other news' article alone."""
    out = {}
    for number, theme in enumerate(themes):
        for article in theme.articles:
            alone = theme.label == OTHER_NEWS
            out[article.key] = f"single:{article.key}" if alone else f"theme:{number}"
    return out


def bcubed(predicted: list[str], gold: list[str]) -> tuple[float, float, float]:
    pairs = Counter(zip(predicted, gold, strict=True))
    sizes_p, sizes_g = Counter(predicted), Counter(gold)
    n = len(gold)
    precision = sum(c * c / sizes_p[p] for (p, _), c in pairs.items()) / n
    recall = sum(c * c / sizes_g[g] for (_, g), c in pairs.items()) / n
    return precision, recall, 2 * precision * recall / (precision + recall)


def score(name: str, data: list[tuple[Article, str]]) -> float:
    articles = [a for a, _ in data]
    gold = [g for _, g in data]
    found = partition(group(articles))
    methods = {
        "digest.group": [found[a.key] for a in articles],
        "baseline: every article alone": [a.key for a in articles],
        "baseline: one group per source": [a.source for a in articles],
    }
    print(f"\n{name}: {len(articles)} headlines, {len(set(gold))} stories")
    print(f"  {'method':32s} {'B3-P':>6s} {'B3-R':>6s} {'B3-F1':>6s} {'ARI':>6s}")
    f1 = 0.0
    for method, predicted in methods.items():
        p, r, f = bcubed(predicted, gold)
        ari = adjusted_rand_score(gold, predicted)
        print(f"  {method:32s} {p:6.3f} {r:6.3f} {f:6.3f} {ari:6.3f}")
        f1 = f if method == "digest.group" else f1
    return f1


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
    began = time.perf_counter()
    tfidf([f"{a.title} {a.summary}" for a in articles])
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

    named = sum(t.label != OTHER_NEWS for t in themes)
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
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--size", type=int, default=20_000)
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"bench/group.py: no labelled data at {args.data}; pass --data PATH")

    data = load_uci(args.data)
    score("UCI sample, all stories", data)
    score("UCI sample, tuning half", [d for d in data if tuning_half(d[1])])
    score("UCI sample, held-out half", [d for d in data if not tuning_half(d[1])])
    if OWN_DATA.is_file():
        score(f"own set ({OWN_DATA.relative_to(ROOT)})", load_own(OWN_DATA))
    big = variants(data, args.size)
    timing([a for a, _ in big])
    score(f"{len(big)} headlines with generated variants", big)


if __name__ == "__main__":
    main()
