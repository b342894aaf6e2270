"""Theme labels an editor would write: a short phrase taken from the theme's own headlines.

Each word of the theme scores by how many of its stories use it beyond the
first (a word in one headline only says nothing about the theme) times how
rare it is across the day (class-based TF-IDF), so "Landmine" beats "says".
The label is the best run of 2 to 6 words of one headline: the run holding
the most score for the fewest words that carry none, starting and ending on a
telling word, shown as the headline wrote it ("Landmine Treaty", "Trump and
Putin"); never starting or ending on a headline verb or small word
("Canada Enhances", "Coming To More Countries"). Every word of a label is
therefore found in a headline of its theme.
With no such run, the two best words are put side by side. Labels are unique
within an edition: a label already taken gives way to the next best.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from digest.group.text import NOISE, SYNONYMS, stem, words

MIN_WORDS = 2
MAX_WORDS = 6
SPAN_HEADLINES = 20  # headlines searched for a run: the theme's most widely carried
IDLE_COST = 0.5  # a word carrying no score costs this share of the best word's score
LENGTH_COST = 0.6  # and every telling word beyond two costs this share: short labels read best
LEAD_SHARE = 0.1  # a word of the headline alone counts as this much of a shared one

# Words headlines use about anything: never a label's first or last word.
_GENERIC_WORDS = (
    "amid amidst after over against ahead among as via despite first second third last "
    "latest big major full more most next day days week weeks year years month time "
    "today tonight people man woman told tells tell calls make makes made take takes took "
    "get gets set sets move moves plans step steps way things know need could would "
    "will may might can just still now bold ongoing rising growing global crucial "
    "turning new old good bad best worst small high low vs taking making getting"
)
GENERIC = frozenset(_GENERIC_WORDS.split())

# Words that leave a label hanging ("Canada Enhances", "Coming To More Countries",
# "Banks focus"): a label neither starts nor ends on one. Verbs in every form;
# verbs that are also headline nouns ("Ban Bossy", "Trump's Cuts") only as
# -ed and -ing; past forms and small words as written.
_VERBS = (
    "accept add agree announce approve ask beat begin boost bring buy come confirm decline "
    "deny direct distinguish draw end enhance expect face file find focus give go grow "
    "help hire join "
    "keep kill leave let lift lose miss move push raise reach recognise recognize "
    "reject remain reveal seek sell send slam stop struggle sue take threaten tie try "
    "unite unveil urge want warn wed weigh"
)
_NOUN_VERBS = (
    "back ban call claim close cut debut delay drop fall forecast gain hike hit hold hope "
    "launch lead look offer plan play point post release rise show sink slip soar start "
    "strike support surge talk target top trade turn update vote win"
)
_AS_WRITTEN = (
    "began begun brought bought came drew fell found gave gone grew held kept led left "
    "lost rose sank sent shown sold struck taken took won like than to of for in on at "
    "by with from into about as is are was were be been has have had not no"
)


def _inflected(base: str) -> set[str]:
    """-ed and -ing forms, with a short word's last consonant doubled too (ban, banned)."""
    root = base[:-1] if base.endswith("e") else base
    forms = {root + "ed", root + "ing", base + "d"}
    if len(base) <= 4 and base[-2] in "aeiou" and base[-1] not in "aeiouwy":
        forms |= {base + base[-1] + "ed", base + base[-1] + "ing"}
    return forms


HANGING = frozenset(
    {f for b in _VERBS.split() for f in {b, b + "s", b + "es", *_inflected(b)}}
    | {f for b in _NOUN_VERBS.split() for f in _inflected(b)}
    | set(_AS_WRITTEN.split())
)
_SEGMENT = re.compile(r"\s[-–—|]\s|[:;|()\[\]\"“”?!]|,\s|\.\s")
_TOKEN = re.compile(r"[^\W_]+(?:[.'’&-][^\W_]+)*(?:['’]s)?")


class Labeller:
    """Knows how common every word is across the day's headlines."""

    def __init__(self, texts: list[str]) -> None:
        self._texts = texts
        self._stems = [frozenset(term for term, _ in words(t)) for t in texts]
        self._df: Counter[str] = Counter()
        for found in self._stems:
            self._df.update(found)
        self._n = len(texts)
        self._taken: set[str] = set()

    def label(self, reports: list[int]) -> str:
        """A 2-to-6-word label for these reports (indices into the texts, lead first).

        Unique among the labels this labeller has given; '' when the headlines
        hold no telling word at all.
        """
        weight = self._weights(reports)
        if not weight:
            return ""
        candidates = self._runs(reports[:SPAN_HEADLINES], weight)
        ranked = sorted(weight, key=lambda s: (-weight[s], s))
        candidates.extend(self._pairs(reports[:SPAN_HEADLINES], ranked))
        for _, text in sorted(candidates, key=lambda c: (-c[0], len(c[1]), c[1])):
            key = text.lower()
            if key not in self._taken:
                self._taken.add(key)
                return text
        return ""

    def _weights(self, reports: list[int]) -> dict[str, float]:
        """Each telling word's score: how many headlines share it beyond one, times its rarity.

        The lead's own words get a little score too, so a theme whose headlines
        share one word or none is still named from its main story.
        """
        counts: Counter[str] = Counter()
        for index in reports:
            counts.update(self._stems[index])
        lead = self._stems[reports[0]]
        return {
            t: (c - 1 + LEAD_SHARE * (t in lead)) * math.log(1 + self._n / self._df[t])
            for t, c in counts.items()
            if t not in GENERIC and (c > 1 or t in lead)
        }

    def _runs(self, reports: list[int], weight: dict[str, float]) -> list[tuple[float, str]]:
        """(score, text) of every run of words in these headlines worth a label."""
        best = max(weight.values())
        out: dict[str, tuple[float, str]] = {}
        for index in reports:
            for segment in _SEGMENT.split(self._texts[index]):
                tokens = _TOKEN.findall(segment)
                keys = [_key(t) for t in tokens]
                firm = [
                    _telling(k, weight) and not _hanging(t)
                    for k, t in zip(keys, tokens, strict=True)
                ]
                for start in range(len(tokens)):
                    if not firm[start]:
                        continue
                    for end in range(start + MIN_WORDS, min(start + MAX_WORDS, len(tokens)) + 1):
                        if not firm[end - 1]:
                            continue
                        run = keys[start:end]
                        scored = set(run) & weight.keys()
                        # Small words between names ("Trump and Putin") are free.
                        idle = sum(k not in weight and k not in NOISE for k in run)
                        length = sum(k not in NOISE for k in run)
                        if len(scored) < 2 and (idle or length > 1):
                            continue  # one telling word padded out: "Takes Bold Step"
                        score = sum(weight[k] for k in scored) - best * (
                            IDLE_COST * idle + LENGTH_COST * max(0, length - MIN_WORDS)
                        )
                        text = " ".join(tokens[start:end]).strip("'’")
                        text = text[:-2] if text.endswith(("'s", "’s")) else text
                        text = text[0].upper() + text[1:]
                        known = out.get(text.lower())
                        # The same run written several ways: the most capitalised spelling.
                        spelled = sum(c.isupper() for c in text)
                        if known is None or (score, spelled) > (known[0], _capitals(known[1])):
                            out[text.lower()] = (score, text)
        return list(out.values())

    def _pairs(self, reports: list[int], ranked: list[str]) -> list[tuple[float, str]]:
        """Two telling words side by side, as a headline spells them: the fallback."""
        spelled = [self._spelling(term, reports) for term in ranked]
        spelled = [s for s in spelled if s and not _hanging(s)][:4]
        out = []
        for i, first in enumerate(spelled):
            for second in spelled[i + 1 :]:
                out.append((-1.0 - i, f"{first} {second}"))
        return out

    def _spelling(self, term: str, reports: list[int]) -> str:
        seen: Counter[str] = Counter()
        for index in reports:
            for found, surface in words(self._texts[index]):
                if found == term:
                    seen[surface] += 1
        if not seen:
            return ""
        return max(seen.items(), key=lambda kv: (kv[1], not kv[0].islower(), kv[0]))[0]


def _key(token: str) -> str:
    term = stem(token.lower())
    return SYNONYMS.get(term, term)


def _telling(key: str, weight: dict[str, float]) -> bool:
    return key in weight and key not in NOISE


def _hanging(token: str) -> bool:
    lowered = token.lower()
    return lowered in HANGING or lowered.endswith(("n't", "n’t"))


def _capitals(text: str) -> int:
    return sum(c.isupper() for c in text)
