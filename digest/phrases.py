"""Topic matching: operator and subscriber topics against an article's own words.

A topic's word matches as a whole word in any of its usual forms, ignoring
case: "rail" matches "Rail strike" and "rails" but not "Trailblazer"; "cut"
matches "cuts", "fine" matches "fined". A short word in capitals is an
abbreviation and keeps its case: "US" is not "us". A topic of several words
matches where all of them are found, in any order, close together in the
title or in the summary, as a search box does: a theme's label followed from
the preferences page ("Trump and Putin's Call") then follows "Putin's call
with Trump", which its exact words would miss, while "Apple TV" stays off
"Apple shares rise" with TV further down the summary. Small joining words
need not be found, and a possessive counts as its name ("Putin's" as
"Putin"). In double quotes a topic is matched word for word ('"rail
strike"'), with any run of whitespace between its words; so is a topic with
one telling word among others ("The Who"), or with marks inside its word
(".NET").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

QUOTES = '"“”'
# Words a topic of several words need not find: "Trump and Putin's Call".
SMALL_WORDS = frozenset(
    ["a", "an", "and", "&", "at", "by", "for", "from", "in", "of", "on", "the", "to", "with"]
)
# A possessive or a plural's apostrophe: "Putin's" is "Putin", "Parents'" is "Parents".
POSSESSIVE = re.compile(r"['’]s?$")
NEAR = 60  # characters within which a topic's words must all be found: about a clause
# The endings of a word's usual forms: "cuts", "fined", "striking", "Putin's".
_ENDINGS = ("s", "es", "d", "ed", "ing")
_FORMS = rf"(?:{'|'.join(_ENDINGS)})?(?:'s?)?"
_WORD = re.compile(r"\w")
_PLAIN = re.compile(r"\w+")
_TRIM = "\"“”'‘,;:!?()[]"


def topic_problem(topic: str) -> str | None:
    """Why a topic can match nothing, or None: it must hold a letter or digit."""
    if not _WORD.search(topic):
        return f"topic {topic[:30]!r} has no letter or digit to match"
    return None


def topic_matcher(topics: Iterable[str]) -> Callable[[str], bool] | None:
    """A test of whether a text matches any of these topics; None for no topics.

    The text is a title, a newline and a summary, as the callers join them.
    """
    phrases: set[str] = set()
    wanted: list[frozenset[str]] = []
    for topic in topics:
        text = _normal(topic).strip()
        words = _words(text)
        # One word with marks in it ("E!", ".NET", "it's"), or among small ones ("The
        # Who"), is matched as written.
        single = len(words) == 1 and not _PLAIN.fullmatch(text)
        if text[:1] in QUOTES or not words or single:
            phrases.add(" ".join(text.strip(QUOTES).split()).lower())
        else:
            wanted.append(words)
    phrases = {p for p in phrases if topic_problem(p) is None}
    if not phrases and not wanted:
        return None
    phrase = _phrase_pattern(phrases)
    vocabulary = {w for words in wanted for w in words}
    word = _word_pattern(vocabulary)

    def matches(text: str) -> bool:
        text = _normal(text)
        if phrase is not None and phrase.search(text):
            return True
        if word is None:
            return False
        return any(_near(word, part, wanted, vocabulary) for part in text.split("\n"))

    return matches


def _near(
    word: re.Pattern[str], text: str, wanted: list[frozenset[str]], vocabulary: set[str]
) -> bool:
    """Whether some topic's words are all found in `text` within NEAR characters."""
    found = [(m.start(), _base(m.group(0), vocabulary)) for m in word.finditer(text)]
    for words in wanted:
        hits = [(at, w) for at, w in found if w in words]
        for first, (start, _) in enumerate(hits):
            seen = {w for at, w in hits[first:] if at - start <= NEAR}
            if seen >= words:
                return True
    return False


def _base(found: str, vocabulary: set[str]) -> str:
    """The topic word a form found in a text stands for: "cut" for "cuts", "strike"
    for "striking", "rates" for "rate"."""
    stem = POSSESSIVE.sub("", found)
    lowered = stem.lower()
    candidates = [stem, lowered, lowered + "s", lowered + "es"]
    for ending in _ENDINGS:
        if lowered.endswith(ending):
            base = lowered[: -len(ending)]
            candidates += [base, base + "e"]
    return next((c for c in candidates if c in vocabulary), lowered)


def _normal(text: str) -> str:
    """One spelling of what readers take for the same: composed accents, straight quotes."""
    return unicodedata.normalize("NFC", text).replace("’", "'")


def _words(topic: str) -> frozenset[str]:
    """A topic's words that a text must hold: no small ones, possessives as names,
    lower-cased but for abbreviations in capitals ("US")."""
    out = set()
    for raw in topic.split():
        token = POSSESSIVE.sub("", raw.strip(_TRIM))
        if token and token.lower() not in SMALL_WORDS:
            out.add(token if _abbreviation(token) else token.lower())
    return frozenset(out)


def _abbreviation(token: str) -> bool:
    """Short capitals ("US", "WHO", "EU"), often a word too ("us", "who"); a longer word
    in capitals is one shouted ("STORM")."""
    return 1 < len(token) <= 3 and token.isupper()


def _singular(word: str) -> str:
    """ "rates" gives "rate", so a plural topic finds the singular too; "news" stays."""
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is", "ws")):
        return word[:-1]
    return word


def _phrase_pattern(phrases: set[str]) -> re.Pattern[str] | None:
    """Any of these phrases as whole words, as written, ignoring case."""
    if not phrases:
        return None
    ordered = sorted(phrases, key=len, reverse=True)  # "central bank" before "central"
    alternatives = "|".join(r"\s+".join(map(re.escape, p.split())) for p in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _word_pattern(words: set[str]) -> re.Pattern[str] | None:
    """Any of these words in its usual forms, ignoring case but for abbreviations."""
    if not words:
        return None
    alternatives = []
    for word in sorted(words, key=len, reverse=True):
        if _abbreviation(word):
            alternatives.append(rf"(?-i:{re.escape(word)})(?:'s?)?")
            continue
        stems = {word, _singular(word)}
        stems |= {w[:-1] for w in stems if w.endswith("e") and len(w) > 3}  # "striking"
        ordered = sorted(map(re.escape, stems), key=len, reverse=True)
        alternatives.append(rf"(?:{'|'.join(ordered)}){_FORMS}")
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)", re.IGNORECASE)
