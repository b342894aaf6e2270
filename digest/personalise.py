"""Personalise: narrow one edition to the themes a subscriber asked for.

Pure and deterministic: the result depends only on the edition and the
subscriber's topics, so a sender may compute it once per distinct pair of
topic lists and reuse it for every subscriber who shares them.

A topic matches a theme label or an article title as a whole word or
phrase, ignoring case: "rail" matches "Rail strike" but not "Trailblazer".
`personal_edition` adds the one choice a sender makes on top: the quiet-day
note, or nothing, for a subscriber left with nothing to read.
"""

from __future__ import annotations

from collections.abc import Iterable

from digest.models import Article, Edition, Subscriber, Theme
from digest.phrases import phrase_pattern


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
        # Hidden articles (folded duplicates, past the caps) must not come back as a lead.
        articles = [a for a in theme.articles if a.shown]
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


def personal_edition(
    edition: Edition, subscriber: Subscriber, *, quiet_note: bool
) -> Edition | None:
    """What this subscriber should receive today, or None to skip them.

    With `quiet_note` (DIGEST_QUIET_DAY=note), a subscriber left with nothing gets
    the short quiet-day note instead of nothing.
    """
    mine = personalise(edition, subscriber)
    if mine is None and quiet_note:
        return quiet_edition(edition)
    return mine


def quiet_edition(edition: Edition) -> Edition:
    """The edition with nothing in it: rendered, it is the short "quiet day" note."""
    return edition.model_copy(update={"themes": []})


def nothing_to_read(edition: Edition) -> str:
    """Why a subscriber gets nothing (or the quiet-day note) today, for the log."""
    if any(t.shown for t in edition.themes):
        return "their topics leave nothing to read today"
    return "the edition is empty today"


def _matcher(topics: Iterable[str]):
    pattern = phrase_pattern(topics)
    if pattern is None:
        return None
    return lambda text: pattern.search(text) is not None


def _with_articles(theme: Theme, articles: list[Article]) -> Theme:
    if articles == theme.articles:
        return theme
    return theme.model_copy(update={"articles": articles})
