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
of its articles in themes of three sources or more that no source dominates.
A news site's own stories (its city's council, its country's elections) fill
themes of its own too; without this rule, taking one site for a stream left
the others dominant in the themes they shared, and a day of six news sites
could lose all six to the catch-all. Three blogs on one project, one of them
filling the theme, share no news.

And a stream repeats its subject: its posts are at least ALIKE times as
alike as the day's articles are (a catalogue, a project's releases, one
hobby), while a news site's are about as alike as the day's. Without this, a
news site alone among many posts, as on a first run that finds a site's
undated pages, went whole to the catch-all.
"""

from __future__ import annotations

from collections import Counter

from digest.models import Article

DOMINANT = 0.5  # a theme is a source's own when this share of its articles come from it
MIN_POSTS = 3  # fewer posts than this are no stream, just an article or two
MAX_SHARE = 0.5  # a source carrying more of the day than this is the day's news, not a stream
ALIKE = 2.0  # a stream's posts are at least this many times as alike as the day's articles
NEWS_SHARE = 0.15  # a source with this share of its articles in many-voiced themes shares the news


def stream_sources(
    articles: list[Article], themes: list[list[int]], alike: dict[str, float]
) -> frozenset[str]:
    """Sources whose articles on this day are their own stream; `themes` index `articles`,
    `alike` says how many times as alike each source's articles are as the day's."""
    day = Counter(a.source for a in articles)
    if len(day) < 2:
        return frozenset()
    total = len(articles)
    # Articles in themes of three sources or more, none of them dominant: shared news.
    reported: Counter[str] = Counter()
    for members in themes:
        sources = Counter(articles[i].source for i in members)
        if len(sources) > 2 and max(sources.values()) < DOMINANT * len(members):
            reported.update(sources)
    found: set[str] = set()
    while True:  # several blogs' posts in one theme: the largest stream first, then the rest
        own: Counter[str] = Counter()
        for members in themes:
            sources = Counter(articles[i].source for i in members)
            for known in found:
                sources.pop(known, None)
            if sum(sources.values()) < MIN_POSTS:
                continue
            source, count = sources.most_common(1)[0]
            if count >= DOMINANT * sum(sources.values()):
                own[source] += count
        new = {
            s
            for s, count in own.items()
            if day[s] >= MIN_POSTS
            and 2 * count >= day[s]
            and day[s] <= MAX_SHARE * total
            and reported[s] < NEWS_SHARE * day[s]
            and alike.get(s, 0.0) >= ALIKE
        } - found
        if not new:
            return frozenset(found)
        found |= new
