"""Operator topics: named keyword rules that pin matching articles to one theme.

An article matches a topic when any of its keywords appears in its title or
summary as whole words, ignoring case. The first matching topic wins, in the
order the operator listed them; matched articles skip clustering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from digest.models import Article
from digest.phrases import phrase_pattern


@dataclass(frozen=True)
class Topic:
    name: str
    keywords: tuple[str, ...]

    @property
    def pattern(self) -> re.Pattern[str]:
        pattern = phrase_pattern(self.keywords)
        assert pattern is not None, "a topic has at least one keyword"
        return pattern


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
