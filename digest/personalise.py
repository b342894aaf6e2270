"""Personalise: narrow one edition to the themes a subscriber asked for.

Pure and deterministic: the result depends only on the edition and the
subscriber's topics, so a sender may compute it once per distinct pair of
topic lists and reuse it for every subscriber who shares them.

A topic matches an article's own title and summary as a whole word or
phrase, ignoring case: "rail" matches "Rail strike" but not "Trailblazer".
Theme labels are never matched: a theme is a loose grouping, and excluding
"Trump" must not drop a story on Ramadan that happened to share its theme.
`personal_edition` adds the one choice a sender makes on top: the quiet-day
note, or nothing, for a subscriber left with nothing to read.
"""

from __future__ import annotations

from collections.abc import Iterable

from digest.models import Article, Edition, Subscriber, Theme
from digest.phrases import phrase_pattern


def personalise(edition: Edition, subscriber: Subscriber) -> Edition | None:
    """The subscriber's own edition, or None when nothing is left for them to read.

    With topics to include, only the articles whose title or summary matches
    are kept; topics to exclude then drop every article whose title or summary
    matches. A theme left without articles is dropped; one that lost its lead
    is led by its next article. Hidden themes stay hidden.
    """
    include = _matcher(subscriber.topics_include)
    exclude = _matcher(subscriber.topics_exclude)
    themes: list[Theme] = []
    for theme in edition.themes:
        if not theme.shown:
            continue
        # Hidden articles (folded duplicates, past the caps) must not come back as a lead.
        articles = [a for a in theme.articles if a.shown]
        if include:
            articles = [a for a in articles if include(_text(a))]
        if exclude:
            articles = [a for a in articles if not exclude(_text(a))]
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


def _text(article: Article) -> str:
    return f"{article.title}\n{article.summary}"


def _matcher(topics: Iterable[str]):
    pattern = phrase_pattern(topics)
    if pattern is None:
        return None
    return lambda text: pattern.search(text) is not None


def _with_articles(theme: Theme, articles: list[Article]) -> Theme:
    if articles == theme.articles:
        return theme
    return theme.model_copy(update={"articles": articles})
