"""Topic matching: operator and subscriber topics against an article's own words.

A topic of one word matches it as a whole word, ignoring case: "rail" matches
"Rail strike" but not "Trailblazer". A topic of several words matches where
all of them are found, in any order, close together in the title or in the
summary, as a search box does: a theme's label followed from the preferences
page ("Trump and Putin's Call") then follows "Putin's call with Trump", which
its exact words would miss, while "Apple TV" stays off "Apple shares rise" with
TV further down the summary. Small joining words need not be found, and a
possessive counts as its name ("Putin's" as "Putin"). In double quotes a topic
is matched word for word ('"rail strike"'), with any run of whitespace between
its words; so is a topic with one telling word ("The Who", ".NET").
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
_WORD = re.compile(r"\w")
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
        text = _normal(topic).strip().lower()
        words = _words(text)
        if text[:1] in QUOTES or len(words) < 2:
            phrases.add(" ".join(text.strip(QUOTES).split()))
        else:
            wanted.append(words)
    phrases = {p for p in phrases if topic_problem(p) is None}
    if not phrases and not wanted:
        return None
    phrase = _whole(phrases, r"\s+")
    word = _whole({w for words in wanted for w in words}, "", possessive=True)

    def matches(text: str) -> bool:
        text = _normal(text)
        if phrase is not None and phrase.search(text):
            return True
        if word is None:
            return False
        return any(_near(word, part, wanted) for part in text.split("\n"))

    return matches


def _near(word: re.Pattern[str], text: str, wanted: list[frozenset[str]]) -> bool:
    """Whether some topic's words are all found in `text` within NEAR characters."""
    found = [(m.start(), POSSESSIVE.sub("", m.group(0).lower())) for m in word.finditer(text)]
    for words in wanted:
        hits = [(at, w) for at, w in found if w in words]
        for first, (start, _) in enumerate(hits):
            seen = {w for at, w in hits[first:] if at - start <= NEAR}
            if seen >= words:
                return True
    return False


def _normal(text: str) -> str:
    """One spelling of what readers take for the same: composed accents, straight quotes."""
    return unicodedata.normalize("NFC", text).replace("’", "'")


def _words(topic: str) -> frozenset[str]:
    """A topic's words that a text must hold: no small ones, possessives as names."""
    out = set()
    for raw in topic.split():
        token = POSSESSIVE.sub("", raw.strip(_TRIM))
        if token and token not in SMALL_WORDS:
            out.add(token)
    return frozenset(out)


def _whole(items: set[str], space: str, possessive: bool = False) -> re.Pattern[str] | None:
    """One pattern finding any of these words or phrases as whole words, ignoring case."""
    if not items:
        return None
    ordered = sorted(items, key=len, reverse=True)  # "central bank" before "central"
    alternatives = "|".join(space.join(map(re.escape, item.split())) for item in ordered)
    suffix = r"(?:'s?)?" if possessive else ""
    return re.compile(rf"(?<!\w)(?:{alternatives}){suffix}(?!\w)", re.IGNORECASE)
