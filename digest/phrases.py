"""Topic matching: operator and subscriber topics against an article's own words.

A topic of one word matches it as a whole word, ignoring case: "rail" matches
"Rail strike" but not "Trailblazer". A topic of several words matches a text
holding every one of them, in any order, as a search box does: a theme's label
followed from the preferences page ("Trump and Putin's Call") then follows
"Putin's call with Trump", which its exact words would miss. Small joining
words need not be found, and a possessive counts as its name ("Putin's" as
"Putin"). In double quotes a topic is matched as that exact phrase
('"rail strike"'), with any run of whitespace between its words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

QUOTES = '"“”'
# Words a topic of several words need not find: "Trump and Putin's Call".
SMALL_WORDS = frozenset(["a", "an", "and", "&", "at", "by", "for", "from", "in", "of", "on"])
SMALL_WORDS |= {"the", "to", "with"}
_EDGE = "'\"“”‘’.,:;!?()[]"
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)


def topic_matcher(topics: Iterable[str]) -> Callable[[str], bool] | None:
    """A test of whether a text matches any of these topics; None for no topics."""
    phrases: set[str] = set()
    wanted: list[frozenset[str]] = []
    for topic in topics:
        text = topic.strip().lower()
        words = _words(text)
        if text[:1] in QUOTES or not words:
            phrases.add(" ".join(text.strip(QUOTES).split()))
        else:
            wanted.append(words)
    phrases.discard("")
    if not phrases and not wanted:
        return None
    phrase = _whole(phrases, r"\s+")
    word = _whole({w for words in wanted for w in words}, "", possessive=True)

    def matches(text: str) -> bool:
        if phrase is not None and phrase.search(text):
            return True
        if word is None:
            return False
        found = {_POSSESSIVE.sub("", m.group(0).lower()) for m in word.finditer(text)}
        return any(words <= found for words in wanted)

    return matches


def _words(topic: str) -> frozenset[str]:
    """A topic's words that a text must hold: no small ones, possessives as names."""
    out = set()
    for raw in topic.split():
        token = _POSSESSIVE.sub("", raw.strip(_EDGE))
        if token and token not in SMALL_WORDS:
            out.add(token)
    return frozenset(out)


def _whole(items: set[str], space: str, possessive: bool = False) -> re.Pattern[str] | None:
    """One pattern finding any of these words or phrases as whole words, ignoring case."""
    if not items:
        return None
    ordered = sorted(items, key=len, reverse=True)  # "central bank" before "central"
    alternatives = "|".join(space.join(map(re.escape, item.split())) for item in ordered)
    suffix = r"(?:['’]s)?" if possessive else ""
    return re.compile(rf"(?<!\w)(?:{alternatives}){suffix}(?!\w)", re.IGNORECASE)
