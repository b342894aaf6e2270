"""Group: articles into themes, each with a lead article and a readable label.

`group(articles)` is the one entry point; the method behind it can change
without touching the other stages.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer

from digest.models import Article, Theme

OTHER_NEWS = "Other news"
SIMILARITY = 0.3


def group(articles: list[Article]) -> list[Theme]:
    """Themes in rank order (most widely carried first), singletons last as 'Other news'."""
    if not articles:
        return []
    ordered = sorted(articles, key=lambda a: (a.published, a.key), reverse=True)
    texts = [f"{a.title} {a.title} {a.summary}" for a in ordered]
    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, min_df=1)
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # only stop words
        return [Theme(label=OTHER_NEWS, articles=ordered)]
    similar = matrix @ matrix.T
    similar.data[similar.data < SIMILARITY] = 0
    similar.eliminate_zeros()
    _, labels = connected_components(similar, directed=False)

    members: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        members.setdefault(int(label), []).append(index)

    terms = vectorizer.get_feature_names_out()
    themes: list[Theme] = []
    singles: list[Article] = []
    for indices in members.values():
        if len(indices) == 1:
            singles.append(ordered[indices[0]])
            continue
        sub = matrix[indices]
        centroid = np.asarray(sub.mean(axis=0)).ravel()
        lead = indices[int(np.argmax(sub @ centroid))]
        rest = [ordered[i] for i in indices if i != lead]
        top = [terms[i] for i in np.argsort(-centroid, kind="stable")[:3]]
        themes.append(Theme(label=_label(top), articles=[ordered[lead], *rest]))

    themes.sort(key=_rank)
    if singles:
        themes.append(Theme(label=OTHER_NEWS, articles=singles))
    return themes


def _label(words: list[str]) -> str:
    return " · ".join(w.title() if w.islower() else w for w in words)


def _rank(theme: Theme) -> tuple:
    sources = len({a.source for a in theme.articles})
    newest = max(a.published for a in theme.articles)
    return (-sources, -len(theme.articles), -newest.timestamp(), theme.label)
