"""Operator topics: named keyword rules that pin matching articles to one theme.

An article matches a topic when any of its keywords appears in its title or
summary as whole words, ignoring case. The first matching topic wins, in the
order the operator listed them; matched articles skip clustering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from digest.models import Article


@dataclass(frozen=True)
class Topic:
    name: str
    keywords: tuple[str, ...]

    @property
    def pattern(self) -> re.Pattern[str]:
        alternatives = "|".join(
            r"\s+".join(map(re.escape, k.split())) for k in sorted(self.keywords)
        )
        return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def pin(
    articles: list[Article], topics: tuple[Topic, ...]
) -> tuple[list[tuple[str, list[Article]]], list[Article]]:
    """(topic name, its articles) for topics that matched anything, and the rest."""
    patterns = [(t.name, t.pattern) for t in topics]
    pinned: dict[str, list[Article]] = {}
    rest = []
    for article in articles:
        text = f"{article.title}\n{article.summary}"
        name = next((name for name, p in patterns if p.search(text)), None)
        if name is None:
            rest.append(article)
        else:
            pinned.setdefault(name, []).append(article)
    return list(pinned.items()), rest
