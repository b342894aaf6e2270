"""The days `bench/group.py` groups: labelled headlines read from the shared data by
path (never copied here), and days built from them as operators' feeds make them.

Each builder is deterministic for its seed, so figures can be compared across
versions of digest.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import random
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

from digest.models import Article

QUIET_DAYS = 12


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


NEWS_SITES = ["BBC", "NYT", "Al Jazeera", "DW", "NPR", "AllAfrica"]


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


MIDDLE_DAYS = 8
MIDDLE_SIZE = 337  # the real day: 337 articles from 33 feeds


def middle_day(data: list[tuple[Article, str]], seed: int) -> list[tuple[Article, str]]:
    """MIDDLE_SIZE headlines drawn at random from the UCI stories: a day of the size the
    issue measured on real feeds, between the quiet days and the busy one."""
    return random.Random(seed).sample(data, MIDDLE_SIZE)


TWO_SITE_DAYS = 12


def two_site_day(
    data: list[tuple[Article, str]], categories: dict[str, str], seed: int
) -> list[tuple[Article, str]]:
    """A day of two news sites and nothing else, as an operator with two feeds has:
    each site 6 stories of its own, 1 to 4 headlines each. On odd seeds one site
    reports business and the other the rest (a business paper beside a general
    one), on even seeds the stories are drawn from all."""
    rng = random.Random(seed)
    by_story: dict[str, list[Article]] = {}
    for article, story in data:
        by_story.setdefault(story, []).append(article)
    names = sorted(by_story)
    if seed % 2:
        business = [n for n in names if categories[n] == "b"]
        first = rng.sample(business, 6)
        second = rng.sample([n for n in names if n not in business], 6)
    else:
        drawn = rng.sample(names, 12)
        first, second = drawn[:6], drawn[6:]
    day = []
    for site, stories in (("Daily Ledger", first), ("Evening Post", second)):
        for story in stories:
            chosen = rng.sample(by_story[story], min(len(by_story[story]), rng.randint(1, 4)))
            day += [(a.replace(source=site, key=f"{site}:{a.key}"), story) for a in chosen]
    return day


def uci_categories(path: Path) -> dict[str, str]:
    """Each UCI story's category: b (business), t, e or m."""
    with path.open(newline="", encoding="utf-8") as f:
        return {row["STORY"]: row["CATEGORY"] for row in csv.DictReader(f)}
