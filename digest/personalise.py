"""Personalise: narrow one edition to the themes a subscriber asked for.

Pure and deterministic: the result depends only on the edition and the
subscriber's topics, so a sender may compute it once per distinct pair of
topic lists and reuse it for every subscriber who shares them.

A topic matches an article's own title and summary (phrases.py): a word as a
whole word in any of its forms, ignoring case ("rail" matches "Rail strike"
but not "Trailblazer"), several words when all are found close together, a
quoted phrase as written.
Theme labels are never matched: a theme is a loose grouping, and excluding
"Trump" must not drop a story on Ramadan that happened to share its theme.
`personal_edition` adds the one choice a sender makes on top: the quiet-day
note, or nothing, for a subscriber left with nothing to read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.models import Article, Edition, Subscriber, Theme
from digest.phrases import topic_matcher

if TYPE_CHECKING:
    from digest.config import Settings


def personalise(
    edition: Edition, subscriber: Subscriber, max_themes: int = 0, max_per_theme: int = 0
) -> Edition | None:
    """The subscriber's own edition, or None when nothing is left for them to read.

    Without topics, the edition itself, exactly as previewed. With topics to
    include, only the articles whose title or summary matches are kept, from the
    whole edition (a theme past DIGEST_MAX_THEMES may hold just what they follow);
    topics to exclude then drop every article whose title or summary matches. A
    theme left without articles is dropped; one that lost its lead is led by its
    next article. The caps (DIGEST_MAX_THEMES, DIGEST_MAX_ARTICLES_PER_THEME) then
    apply to what is left. Folded copies never come back as a lead.
    """
    include = topic_matcher(subscriber.topics_include)
    exclude = topic_matcher(subscriber.topics_exclude)
    if include is None and exclude is None:
        return edition if any(t.shown for t in edition.themes) else None
    themes: list[Theme] = []
    for theme in edition.themes:
        articles = [a for a in theme.articles if a.duplicate_of is None]
        if include:
            articles = [a for a in articles if include(_text(a))]
        if exclude:
            articles = [a for a in articles if not exclude(_text(a))]
        if articles:
            shown = not max_themes or len(themes) < max_themes
            limit = max_per_theme or len(articles)
            capped = [a.replace(shown=shown and n < limit) for n, a in enumerate(articles)]
            themes.append(theme.model_copy(update={"articles": capped, "shown": shown}))
    if not any(t.shown for t in themes):
        return None
    return edition.model_copy(update={"themes": themes})


def personal_edition(
    edition: Edition,
    subscriber: Subscriber,
    *,
    quiet_note: bool,
    max_themes: int = 0,
    max_per_theme: int = 0,
) -> Edition | None:
    """What this subscriber should receive today, or None to skip them.

    With `quiet_note` (DIGEST_QUIET_DAY=note), a subscriber left with nothing gets
    the short quiet-day note instead of nothing.
    """
    mine = personalise(edition, subscriber, max_themes, max_per_theme)
    if mine is None and quiet_note:
        return quiet_edition(edition)
    return mine


def view_options(settings: Settings) -> dict:
    """`personal_edition`'s options as the settings give them (DIGEST_QUIET_DAY and the caps)."""
    return {
        "quiet_note": settings.quiet_day == "note",
        "max_themes": settings.max_themes,
        "max_per_theme": settings.max_articles_per_theme,
    }


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
