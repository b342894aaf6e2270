"""Order within and between themes, and the caps on what is rendered.

Themes go by how widely the story is carried (distinct sources, then
articles), then by recency; the catch-all "Also today" is always last. Caps never drop
anything: they only clear `shown`, so the JSON preview still lists it all.
"""

from __future__ import annotations

from digest.models import Theme

ALSO_TODAY = "Also today"


def theme_rank(theme: Theme) -> tuple:
    """Sort key: widest carried first, then most articles, then newest, then label."""
    sources = len({a.source for a in theme.articles})
    newest = max(a.published for a in theme.articles)
    return (-sources, -len(theme.articles), -newest.timestamp(), theme.label)


def apply_caps(themes: list[Theme], max_themes: int, max_per_theme: int) -> list[Theme]:
    """Mark themes beyond `max_themes` and articles beyond `max_per_theme` as not shown.

    0 means no cap. Every section counts towards `max_themes`, the catch-all
    included (it is last, so it is the first to go). Folded duplicates are
    never shown and do not count towards `max_per_theme`; the lead always does.
    In the same pass (one copy of each article, which matters at 20,000) every
    article gets the number of its story, counted through the edition in order.
    """
    capped = []
    story = 0
    for position, theme in enumerate(themes):
        theme_shown = not max_themes or position < max_themes
        articles = []
        count = 0
        for article in theme.articles:
            story += article.duplicate_of is None
            shown = article.duplicate_of is None and theme_shown
            if shown:
                count += 1
                shown = not max_per_theme or count <= max_per_theme
            articles.append(article.replace(shown=shown, story=story))
        capped.append(theme.model_copy(update={"shown": theme_shown, "articles": articles}))
    return capped
