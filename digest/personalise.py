"""Personalise: narrow one edition to the themes a subscriber asked for.

Pure and deterministic: the result depends only on the edition and the
subscriber's topics, so a sender may compute it once per distinct pair of
topic lists and reuse it for every subscriber who shares them.

A topic matches a theme label or an article title as a whole word or
phrase, ignoring case: "rail" matches "Rail strike" but not "Trailblazer".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from digest.models import Article, Edition, Subscriber, Theme


def personalise(edition: Edition, subscriber: Subscriber) -> Edition | None:
    """The subscriber's own edition, or None when nothing is left for them to read.

    With topics to include, a theme whose label matches is kept whole; from any
    other theme only the articles whose titles match are kept (so a grab-bag
    theme such as "Other news" yields just the matching stories). Topics to
    exclude then drop a theme whose label matches, and any article whose title
    matches. A theme left without articles is dropped. Hidden themes stay hidden.
    """
    include = _matcher(subscriber.topics_include)
    exclude = _matcher(subscriber.topics_exclude)
    themes: list[Theme] = []
    for theme in edition.themes:
        if not theme.shown:
            continue
        articles = theme.articles
        if include and not include(theme.label):
            articles = [a for a in articles if include(a.title)]
        if exclude:
            if exclude(theme.label):
                continue
            articles = [a for a in articles if not exclude(a.title)]
        if articles:
            themes.append(_with_articles(theme, articles))
    if not themes:
        return None
    return edition.model_copy(update={"themes": themes})


def topics_key(subscriber: Subscriber) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What `personalise` depends on, for caching one result across subscribers."""
    return (
        tuple(sorted({t.strip().lower() for t in subscriber.topics_include})),
        tuple(sorted({t.strip().lower() for t in subscriber.topics_exclude})),
    )


def _matcher(topics: Iterable[str]):
    words = sorted({t.strip().lower() for t in topics if t.strip()}, key=len, reverse=True)
    if not words:
        return None
    # Whole words or phrases; inner spaces match any run of whitespace.
    alternatives = "|".join(r"\s+".join(re.escape(w) for w in word.split()) for word in words)
    pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
    return lambda text: pattern.search(text) is not None


def _with_articles(theme: Theme, articles: list[Article]) -> Theme:
    if len(articles) == len(theme.articles):  # filtering only removes, so nothing changed
        return theme
    return theme.model_copy(update={"articles": articles})
