"""Operator topics: named keyword rules that pin matching articles to one theme.

An article matches a topic when any of its keywords is found in its title or
summary, as a subscriber's topics are (phrases.py). The first matching topic
wins, in the order the operator listed them; matched articles skip clustering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from digest.models import Article
from digest.phrases import topic_matcher


@dataclass(frozen=True)
class Topic:
    name: str
    keywords: tuple[str, ...]

    @property
    def matches(self) -> Callable[[str], bool]:
        matches = topic_matcher(self.keywords)
        assert matches is not None, "a topic has at least one keyword"
        return matches


def pin(
    articles: list[Article], topics: tuple[Topic, ...]
) -> tuple[list[tuple[str, list[Article]]], list[Article]]:
    """(topic name, its articles) for topics that matched anything, and the rest."""
    patterns = [(t.name, t.matches) for t in topics]
    pinned: dict[str, list[Article]] = {}
    rest = []
    for article in articles:
        text = f"{article.title}\n{article.summary}"
        name = next((name for name, matches in patterns if matches(text)), None)
        if name is None:
            rest.append(article)
        else:
            pinned.setdefault(name, []).append(article)
    return list(pinned.items()), rest
