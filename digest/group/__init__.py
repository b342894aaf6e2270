"""Group: articles into stories, stories into themes, each theme with a lead and a label.

`group(articles, options)` is the one entry point. The steps, each in its own
module: operator topics pin matching articles (topics.py); each article gets
a meaning vector from a model shipped in a package, or from the operator's own
model2vec folder (embed.py); copies and rewordings of one event become one
story listing every outlet (dedupe.py); stories are clustered into themes
(cluster.py), labelled (label.py) and ranked, with the caps marking what is
rendered (rank.py). Articles with too little text to place, and those close
to nothing else, go to the last, catch-all section. The same input always
gives the same themes: articles are put in a fixed order first and every step
is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from digest.group.rank import ALSO_TODAY
from digest.group.topics import Topic

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.models import Article, Theme

__all__ = ["ALSO_TODAY", "GroupOptions", "Topic", "group"]


@dataclass(frozen=True)
class GroupOptions:
    """What an operator sets: DIGEST_MAX_THEMES, DIGEST_MAX_ARTICLES_PER_THEME, DIGEST_TOPICS
    and DIGEST_EMBEDDING_MODEL (None: the model bundled with wordllama)."""

    max_themes: int = 0
    max_articles_per_theme: int = 0
    topics: tuple[Topic, ...] = field(default_factory=tuple)
    embedding_model: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> GroupOptions:
        return cls(
            max_themes=settings.max_themes,
            max_articles_per_theme=settings.max_articles_per_theme,
            topics=tuple(Topic(name, tuple(words)) for name, words in settings.topics.items()),
            embedding_model=settings.embedding_model,
        )


def group(articles: list[Article], options: GroupOptions | None = None) -> list[Theme]:
    """Themes in rank order (most widely carried first), what relates to nothing last."""
    # numpy and scipy load here, not on import: commands that
    # never group (and importing the pipeline) do not pay for them.
    from threadpoolctl import threadpool_limits

    from digest.group.draw import draw

    # The matrices here are small enough that BLAS threads cost more than they
    # save (measured: 2.8 s on one thread, 3.4 s and twice the CPU on two).
    with threadpool_limits(limits=1, user_api="blas"):
        return draw(articles, options or GroupOptions())
