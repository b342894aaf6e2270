"""Theme labels a reader understands at a glance: the theme's most telling words.

A term scores by how many of the theme's reports use it times how rare it is
across the day (class-based TF-IDF), so "Lena Dunham" beats "says". Pairs of
words are preferred to the single words inside them, and each term is shown
in the spelling the headlines use most ("iOS 7.1", not "ios 7.1").
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter

from digest.group.text import words

MAX_TERMS = 3


class Labeller:
    """Knows how common every term is across the day's reports."""

    def __init__(self, texts: list[str]) -> None:
        self._texts = texts
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
        texts = [self._texts[i] for i in reports]
        return ", ".join(_spelling(surfaces[t], texts) for t in chosen)


def _terms_with_surface(text: str) -> dict[str, str]:
    """Each unigram and adjacent pair in the text, with how it was written."""
    found = words(text)
    out = {term: surface for term, surface in found}
    for (a, sa), (b, sb) in itertools.pairwise(found):
        out.setdefault(f"{a} {b}", f"{sa} {sb}")
    return out


def _spelling(surfaces: Counter[str], texts: list[str]) -> str:
    """The most used spelling; a capitalised one wins ties (names, acronyms).

    A pair is shown with the small word the headlines put between its words,
    so "Game Thrones" reads "Game of Thrones".
    """
    best = _most_used(surfaces)
    if " " in best:
        first, second = best.split(" ", 1)
        between = re.compile(
            rf"(?<!\w){re.escape(first)}(?:['’]s)?\W+(?:{_SMALL_WORDS}\W+)?{re.escape(second)}(?!\w)",
            re.IGNORECASE,
        )
        spans = Counter(" ".join(m.group(0).split()) for t in texts for m in between.finditer(t))
        if spans:
            best = _most_used(spans)
    return best if not best.islower() else best.capitalize()


_SMALL_WORDS = "(?:of|the|and|for|in|on|at|to|de|la|&)"


def _most_used(spellings: Counter[str]) -> str:
    return max(spellings.items(), key=lambda kv: (kv[1], not kv[0].islower(), kv[0]))[0]
