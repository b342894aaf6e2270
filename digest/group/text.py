"""Words of a headline, normalised so that rewordings of one story share terms.

Headlines are short, so every shared word counts: plurals and possessives are
folded, a few headline synonyms are mapped to one word, and adjacent pairs
("lena dunham", "ios 7.1") are kept as terms because names carry the story.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

from digest.group.stopwords import FUNCTION_WORDS
from digest.phrases import POSSESSIVE

_WORD = re.compile(r"[^\W_]+(?:[.'’&][^\W_]+)*")

# Headline-ese: words editors use interchangeably for the same thing.
SYNONYMS = {
    "accord": "deal",
    "agreement": "deal",
    "pact": "deal",
    "negotiation": "talk",
    "reach": "agree",
    "overnight": "night",
    "european union": "eu",
    "u.s": "usa",
    "u.k": "uk",
    "britain": "uk",
    "british": "uk",
}
_PHRASES = {k: v for k, v in SYNONYMS.items() if " " in k}

# Words that say nothing about which story a headline tells.
NOISE = FUNCTION_WORDS | {
    "update",
    "new",
    "says",
    "say",
    "said",
    "report",
    "reports",
    "video",
    "photos",
    "watch",
    "live",
    "breaking",
    "exclusive",
}


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light, predictable stem: enough to join 'recalls'/'recall', 'Malaysia's'/'Malaysia'."""
    word = POSSESSIVE.sub("", word)
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


_HASHTAG = re.compile(r"#([^\W_]+)")
# Where a new word starts inside one: "BanBossy", "NASAPhotos"; never after a first
# lower-case letter ("iOS", "eBay").
_CAMEL = re.compile(r"(?<=[^\W_][a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def unhashed(text: str) -> str:
    """Hashtags as the words they join: "#BanBossy" reads "Ban Bossy", "#MH370" "MH370"."""
    if "#" not in text:
        return text
    return _HASHTAG.sub(lambda m: _CAMEL.sub(" ", m.group(1)), text)


@lru_cache(maxsize=65536)
def words(text: str) -> tuple[tuple[str, str], ...]:
    """(normalised term, surface form) for every meaningful word, in order."""
    text = unhashed(text)
    lowered = text.lower()
    for phrase, replacement in _PHRASES.items():
        lowered = lowered.replace(phrase, replacement)
    lowers = _WORD.findall(lowered)
    surfaces = _WORD.findall(text)
    if len(surfaces) != len(lowers):  # a phrase was replaced: fall back to lower case
        surfaces = lowers
    out = []
    for low, surface in zip(lowers, surfaces, strict=True):
        term = _term(low)
        if term is None:
            continue
        if "'" in surface or "’" in surface:  # the regex only where it can match
            surface = POSSESSIVE.sub("", surface)
        out.append((term, surface))
    return tuple(out)


@lru_cache(maxsize=65536)
def _term(low: str) -> str | None:
    """A lower-cased word's normalised term; None for a word that tells nothing.

    Cached apart from `words`: a day's headlines repeat a few thousand words.
    """
    if low in NOISE:
        return None
    term = stem(low)
    term = SYNONYMS.get(term, term)
    if term in NOISE or (len(term) < 2 and not term.isdigit()):
        return None
    return term


@lru_cache(maxsize=65536)
def terms(text: str) -> list[str]:
    """Unigrams, adjacent pairs and pairs written as one word ("chip maker" also
    gives "chipmaker"): the analyzer behind every TF-IDF here.

    Cached, because dedupe, cluster and label read the same headlines.
    """
    unigrams = [term for term, _ in words(text)]
    pairs = list(itertools.pairwise(unigrams))
    return unigrams + [f"{a} {b}" for a, b in pairs] + [a + b for a, b in pairs]


# A number starts where a word does: (?<![^\W_]) spares the engine retrying inside every word.
_NUMBER = re.compile(
    r"(?<![^\W_])[^\W_]*\d[^\W_]*(?:[.,][^\W_]*\d[^\W_]*)*"  # 2025, 9.0, rc2, 3.5.0beta1, MH370
    r"|(?<=part )[IVX]+\b|\b(?=[IVX]{2})X{0,3}(?:IX|IV|V?I{0,3})\b",  # Part I, II, XIV
)


_MAYBE_NUMBER = re.compile(r"\d|\b[IVX]+\b")


def numbers(text: str) -> frozenset[str]:
    """The numbers a title carries ("Week 2", "Part II", "rc1", "2025"), lower-cased.

    Two posts whose titles carry different numbers are different items,
    however alike their words: Part I and Part II, rc1 and rc2.
    """
    if not _MAYBE_NUMBER.search(text):
        return frozenset()
    found = _NUMBER.finditer(text.replace("Part ", "part "))
    return frozenset(m.group(0).lower() for m in found if m.group(0))  # "VIDEO" opens an empty one


_ORDINALS = ["first", "second", "third", "fourth", "fifth"]
_ORDINALS += ["sixth", "seventh", "eighth", "ninth", "tenth"]
_ORDINAL = re.compile(rf"\b(?:{'|'.join(_ORDINALS)})\b")


def ordinals(text: str) -> frozenset[str]:
    """The ordinals a title spells out, as figures ("Second JSON Feed Item": "2nd").

    Kept apart from `numbers`: "a second time" and "Chapter 11" are no
    different items, but the first and the second item are.
    """
    lowered = text.lower()
    if not any(ordinal in lowered for ordinal in _ORDINALS):  # most titles: no regex pass
        return frozenset()
    return frozenset(_figure(m.group(0)) for m in _ORDINAL.finditer(lowered))


def _figure(ordinal: str) -> str:
    """An ordinal in figures: "second" is "2nd"."""
    number = _ORDINALS.index(ordinal) + 1
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number, 'th') }"
