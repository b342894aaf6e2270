"""Theme labels a reader understands at a glance: the theme's most telling words.

A term scores by how many of the theme's reports use it times how rare it is
across the day (class-based TF-IDF), so "Lena Dunham" beats "says". Pairs of
words are preferred to the single words inside them, and each term is shown
in the spelling the headlines use most ("iOS 7.1", not "ios 7.1").
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

from digest.group.text import words

MAX_TERMS = 3


class Labeller:
    """Knows how common every term is across the day's reports."""

    def __init__(self, texts: list[str]) -> None:
        self._terms = [_terms_with_surface(t) for t in texts]
        self._df: Counter[str] = Counter()
        for found in self._terms:
            self._df.update(found.keys())
        self._n = len(texts)

    def label(self, reports: list[int]) -> str:
        """Up to three distinctive terms of these reports (indices into the texts)."""
        counts: Counter[str] = Counter()
        surfaces: dict[str, Counter[str]] = {}
        for index in reports:
            for term, surface in self._terms[index].items():
                counts[term] += 1
                surfaces.setdefault(term, Counter())[surface] += 1
        minimum = 2 if len(reports) > 1 else 1
        scored = sorted(
            (
                (
                    -count * math.log(1 + self._n / self._df[term]) * (1.3 if " " in term else 1.0),
                    term,
                )
                for term, count in counts.items()
                if count >= minimum
            )
        )
        chosen: list[str] = []
        for _, term in scored:
            if any(set(term.split()) & set(c.split()) for c in chosen):
                continue
            chosen.append(term)
            if len(chosen) == MAX_TERMS:
                break
        if not chosen:
            return ""
        return " · ".join(_spelling(surfaces[t]) for t in chosen)


def _terms_with_surface(text: str) -> dict[str, str]:
    """Each unigram and adjacent pair in the text, with how it was written."""
    found = words(text)
    out = {term: surface for term, surface in found}
    for (a, sa), (b, sb) in itertools.pairwise(found):
        out.setdefault(f"{a} {b}", f"{sa} {sb}")
    return out


def _spelling(surfaces: Counter[str]) -> str:
    """The most used spelling; a capitalised one wins ties (names, acronyms)."""
    best = max(surfaces.items(), key=lambda kv: (kv[1], not kv[0].islower(), kv[0]))[0]
    return best if not best.islower() else best.capitalize()
