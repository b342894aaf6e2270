"""One source's own stream: a blog's posts are not news, whatever words they share with it.

A source that fills themes of its own (at least DOMINANT of their articles)
with at least half of its articles, while carrying at most half of a day with
other sources, is writing about its own things: a blog's series, a project's
releases, a shop's catalogue. No other outlet reports them, so an editor
would put none of its articles under a news heading, and no news headline
under a heading made of its posts ("Nexus 8 to have Intel chip on board?"
among ten CPU reviews of one hardware blog). Its articles go to the
catch-all. A day with one source (a single news page) has no stream.

Nor has a source that shares the day's news: one with at least NEWS_SHARE
of its articles in themes of three sources or more where no source holds
over half, in two such themes or with MIN_POSTS articles in one. A news
site's own stories (its city's council, its country's elections) fill themes
of its own too; without this rule, taking one site for a stream left the
others dominant in the themes they shared, and a day of six news sites could
lose all six to the catch-all. A post or two that one news theme drew in is
no sharing, and three blogs on one project, one of them filling the theme,
share nothing.

And a stream repeats its subject: its posts are at least ALIKE times as
alike as the day's articles are, and MARGIN more in similarity (a catalogue,
a project's releases, one hobby), while a news site's are about as alike as
the day's. Without this, a news site alone among many posts, as on a first
run that finds a site's undated pages, went whole to the catch-all. The
margin is for days of unrelated stories, whose articles are hardly alike at
all: there a news site's several reports of one story made it 2 to 2.9 times
as alike as its day, though only 0.06 more. Measured on the bench's days (30
of two news sites) and the real feeds alone: a news site's articles are at
most 0.058 more alike than their day; a real blog's, 0.077 to 0.68 more
(three to five posts of one, from 0.03: those stay where grouping puts them,
under no news heading all the same).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from digest.models import Article

DOMINANT = 0.5  # a theme is a source's own when this share of its articles come from it
MIN_POSTS = 3  # fewer posts than this are no stream, just an article or two
MAX_SHARE = 0.5  # a source carrying more of the day than this is the day's news, not a stream
NEWS_SHARE = 0.15  # a source with this share of its articles in shared themes shares the news
ALIKE = 2.0  # a stream's posts are at least this many times as alike as the day's
MARGIN = 0.07  # and at least this much more alike, in mean similarity

Likeness = Callable[[list[np.ndarray]], np.ndarray]


def stream_sources(
    articles: list[Article], themes: list[list[int]], likeness: Likeness
) -> frozenset[str]:
    """Sources whose articles on this day are their own stream.

    `themes` index `articles`; `likeness` gives, for groups of those indices,
    how alike each group's articles are (their mean similarity).
    """
    day = Counter(a.source for a in articles)
    if len(day) < 2:
        return frozenset()
    by_theme = [Counter(articles[i].source for i in members) for members in themes]
    shared: Counter[str] = Counter()  # articles in themes of three sources or more, none
    shared_themes: Counter[str] = Counter()  # holding over half, and how many such themes
    for sources in by_theme:
        if len(sources) > 2 and max(sources.values()) <= DOMINANT * sum(sources.values()):
            shared.update(sources)
            shared_themes.update(sources.keys())
    alike = _Alike(articles, likeness)
    found: set[str] = set()
    while True:  # several blogs' posts in one theme: the largest stream first, then the rest
        own: Counter[str] = Counter()
        for theme in by_theme:
            sources = Counter({s: c for s, c in theme.items() if s not in found})
            if sum(sources.values()) < MIN_POSTS:
                continue
            source, count = sources.most_common(1)[0]
            if count >= DOMINANT * sum(sources.values()):
                own[source] += count
        new = [
            s
            for s, count in own.items()
            if s not in found
            and day[s] >= MIN_POSTS
            and 2 * count >= day[s]
            and day[s] <= MAX_SHARE * len(articles)
            and not _shares_news(shared[s], shared_themes[s], day[s])
        ]
        new = [s for s in new if alike.repeats(s)]
        if not new:
            return frozenset(found)
        found.update(new)


def _shares_news(articles: int, themes: int, posts: int) -> bool:
    """Whether a source's articles in shared themes make it a news source: NEWS_SHARE
    of its posts, in two themes or more, or MIN_POSTS in one (the day's one big story);
    a post or two that one news theme drew in is no sharing."""
    return articles >= NEWS_SHARE * posts and (themes >= 2 or articles >= MIN_POSTS)


class _Alike:
    """How alike each source's articles are beside the day's, worked out only for the
    sources asked about (each costs a pass over its rows)."""

    def __init__(self, articles: list[Article], likeness: Likeness) -> None:
        self._rows: dict[str, list[int]] = {}
        for i, article in enumerate(articles):
            self._rows.setdefault(article.source, []).append(i)
        self._likeness = likeness
        self._day = float(likeness([np.arange(len(articles))])[0])
        self._known: dict[str, bool] = {}

    def repeats(self, source: str) -> bool:
        """Whether the source's articles repeat one subject: ALIKE times as alike as
        the day's, and MARGIN more. A day whose articles are no more alike than
        chance tells nothing: no stream."""
        if source not in self._known:
            alike = float(self._likeness([np.array(self._rows[source])])[0])
            day = self._day
            self._known[source] = day > 0 and alike >= ALIKE * day and alike - day >= MARGIN
        return self._known[source]
