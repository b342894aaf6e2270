"""Theme labels an editor would write: a short phrase taken from the theme's own headlines.

Each word of the theme scores by how many of its stories use it beyond the
first (a word in one headline only says nothing about the theme) times how
rare it is across the day (class-based TF-IDF), so "Landmine" beats "says".
The label is the best run of 2 to 6 words of one headline: the run holding
the most score for the fewest words that carry none, starting and ending on a
telling word, shown as the headline wrote it ("Landmine Treaty", "Trump and
Putin"); never starting or ending on a headline verb or small word
("Canada Enhances", "Coming To More Countries"), nor inside a date, a figure
or an abbreviation ("3/10/14", "37%", "Jos. A. Bank"), nor cutting a name
joined by "of" ("House of Cards"), words its headlines never part
("Dressing Room") or, in sentence case, a name's capitalised words ("Xbox
One"); never starting on a verb after its subject ("Recalls 40000
vehicles") or ending on an adjective before its noun ("over faulty"). A verb
of one headline adds nothing inside a label ("Canada Enhances Arctic");
joining words are free ("Trump and Putin", "Canada Amid Rising Tensions"). A
spelling in capitals gives way to the headlines' usual one ("Lena Dunham",
not "LENA DUNHAM"), and "iOS" keeps its case. Every word of a label is
therefore found in a headline of its theme. A theme with no such run
(headlines that share one word, as "Europe") has nothing an editor could
name: its articles go to "Also today", never under two words put side by
side ("Topic Tech"). Labels are unique within an edition: a label already
taken gives way to the next best.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from functools import lru_cache
from typing import NamedTuple

from digest.group.label_words import (
    GENERIC,
    JOINING,
    acronym,
    adjective,
    before_verb,
    can_be_verb,
    hanging,
    only_verb,
    people,
    sentence_case,
    verb,
    verb_s_form,
)
from digest.group.text import FUNCTION_WORDS, NOISE, SYNONYMS, stem, unhashed, words

MIN_WORDS = 2
MAX_WORDS = 6
SPAN_HEADLINES = 20  # headlines searched for a run: the theme's most widely carried
IDLE_COST = 0.5  # a word carrying no score costs this share of the best word's score
LENGTH_COST = 0.6  # and every telling word beyond two costs this share: short labels read best
LEAD_SHARE = 0.1  # a word of the headline alone counts as this much of a shared one

# Phrases end at punctuation and where a clause begins ("back in Cairo as aid stalls"),
# not at the full stop of a title or place ("Mt. Gox", "St. Louis", "Dr. Oz").
_TITLE = r"[A-Z][a-z]"  # "Mt.", "St.", "Dr.": a phrase goes on after them
_SEGMENT = re.compile(
    rf"(\s(?:--|[-–—|])\s|[:;|()\[\]\"“”?!]|,\s|(?<!\b(?-i:{_TITLE}))\.\s"
    r"|\s(?:as|while|when|because|although|though|but|if|until|unless|whereas)\s)",
    re.IGNORECASE,
)
# "3/10/14", "EUR/USD" and "37%" are one token each: no label starts or ends inside one.
_TOKEN = re.compile(r"[^\W_]+(?:[.'’&/-][^\W_]+)*(?:['’]s|(?<=s)['’]|%)?|(?<=\s)&(?=\s)")
_TITLED = re.compile(_TITLE)
_ABBREVIATION = re.compile(r"[A-Z][a-z]{0,2}")  # "Jos." in "Jos. A. Bank": no label ends there


class Labeller:
    """Knows how common every word is across the day's headlines."""

    def __init__(self, texts: list[str]) -> None:
        self._texts = [unhashed(t) for t in texts]  # "#BanBossy" offers "Ban Bossy"
        self._stems = [frozenset(term for term, _ in words(t)) for t in texts]
        self._df: Counter[str] = Counter()
        for found in self._stems:
            self._df.update(found)
        self._n = len(texts)
        self._taken: set[str] = set()

    def label(self, reports: list[int]) -> str:
        """A 2-to-6-word label for these reports (indices into the texts, lead first).

        Unique among the labels this labeller has given; '' when the headlines
        hold no run of words worth one.
        """
        weight, shared = self._weights(reports)
        if not weight:
            return ""
        # Words the headlines never part and a name's words stay together, unless that
        # leaves no label (two wordings of one long headline tie every word to the
        # next; "Patch Xbox" beats no label, "Xbox One" being out of reach).
        for tied in (True, False):
            candidates = self._runs(reports[:SPAN_HEADLINES], weight, shared, tied)
            for _, text in sorted(candidates, key=lambda c: (-c[0], len(c[1]), c[1])):
                key = text.lower()
                if key not in self._taken:
                    self._taken.add(key)
                    return self._unshouted(text, reports) if text.isupper() else text
        return ""

    def _unshouted(self, text: str, reports: list[int]) -> str:
        """A label in capitals ("LENA DUNHAM") as the other headlines spell its words,
        else in lower case; short words stay as they are (NASA, FBI)."""
        out = []
        for token in text.split():
            spelled = self._spelling(_key(token), reports)
            if not spelled:
                small = token.lower() in FUNCTION_WORDS or len(token) > 4
                spelled = token.lower() if small else token
            out.append(spelled)
        return " ".join(out)

    def _weights(self, reports: list[int]) -> tuple[dict[str, float], frozenset[str]]:
        """Each telling word's score: how many headlines share it beyond one, times its
        rarity; and the words shared by two headlines or more.

        The lead's own words get a little score too, so a theme whose headlines
        share one word or none is still named from its main story.
        """
        counts: Counter[str] = Counter()
        for index in reports:
            counts.update(self._stems[index])
        lead = self._stems[reports[0]]
        weight = {
            t: (c - 1 + LEAD_SHARE * (t in lead)) * math.log(1 + self._n / self._df[t])
            for t, c in counts.items()
            if t not in GENERIC and (c > 1 or t in lead)
        }
        return weight, frozenset(t for t, c in counts.items() if c > 1)

    def _runs(
        self, reports: list[int], weight: dict[str, float], shared: frozenset[str], tied: bool
    ) -> list[tuple[float, str]]:
        """(score, text) of every run of words in these headlines worth a label."""
        best = max(weight.values())
        texts = [self._texts[index] for index in reports]
        names = _names(texts)
        bonds = _bonds(texts, weight) if tied else (frozenset(), frozenset())
        out: dict[str, tuple[float, str]] = {}
        for index in reports:
            phrases = _phrases(self._texts[index], weight, names, bonds, tied)
            for tokens, keys, opens, closes in phrases:
                for start in range(len(tokens)):
                    if not opens[start]:
                        continue
                    for end in range(start + MIN_WORDS, min(start + MAX_WORDS, len(tokens)) + 1):
                        if not closes[end - 1] or _cut_clause(tokens, start, end):
                            continue
                        score = _score(tokens[start:end], keys[start:end], weight, shared, best)
                        if score is None:
                            continue
                        text = " ".join(tokens[start:end]).strip("'’")
                        text = _capitalised(text[:-2] if text.endswith(("'s", "’s")) else text)
                        known = out.get(text.lower())
                        # The same run written several ways: the most capitalised
                        # spelling that is not shouted ("Lena Dunham", not "LENA DUNHAM").
                        if known is None or (score, _spelled(text)) > (
                            known[0],
                            _spelled(known[1]),
                        ):
                            out[text.lower()] = (score, text)
        return list(out.values())

    def _spelling(self, term: str, reports: list[int]) -> str:
        """The theme's usual spelling of a term, none in capitals; '' if every one is."""
        seen: Counter[str] = Counter()
        for index in reports:
            for found, surface in words(self._texts[index]):
                if found == term and not surface.isupper():
                    seen[surface] += 1
        if not seen:
            return ""
        return max(seen.items(), key=lambda kv: (kv[1], not kv[0].islower(), kv[0]))[0]


def _phrases(
    text: str,
    weight: dict[str, float],
    names: frozenset[tuple[str, str, str]],
    bonds: tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]],
    tied: bool,
) -> list[tuple[list[str], list[str], list[bool], list[bool]]]:
    """Each phrase of a headline (between punctuation) as its tokens, their keys, and
    whether a label may start on each, and end on each."""
    out = []
    in_sentence_case = tied and sentence_case(_TOKEN.findall(text))
    for segment in _segments(text):
        tokens, keys = list(segment.tokens), list(segment.keys)
        firm = [_telling(k, weight) and not hanging(t) for k, t in zip(keys, tokens, strict=True)]
        if segment.abbreviated:
            firm[-1] = False
        opens, closes = firm.copy(), firm
        # In sentence case, capitalised words side by side are one name: no label
        # ends inside "Soviet Union" or "Jos A Bank" (an abbreviation is no part
        # of one: "Libyan PM", "Dodge SUVs").
        if in_sentence_case:
            for i, (first, second) in enumerate(itertools.pairwise(tokens)):
                if first[0].isupper() and second[0].isupper() and not acronym(second):
                    closes[i] = False
        for i, token in enumerate(tokens):
            if token.endswith("."):  # "Mt.": its name follows
                closes[i] = False
            # A number opens a label only where it opens its phrase: "10 Things",
            # never "11 Bankruptcy" out of "Chapter 11 Bankruptcy".
            if i and token.isdigit():
                opens[i] = False
            # A figure closes one only after a word it counts: "Season 4", not
            # "Prices By 37" or "Bank for 1.8".
            if i and token[0].isdigit() and tokens[i - 1].lower() in FUNCTION_WORDS:
                closes[i] = False
            # An infinitive ends nothing: "Google to Launch", "Europe must wake"; nor
            # does one start anything after a modal ("Wake up to Russian gas"), while
            # after "to" it may name a campaign ("Ban Bossy").
            if i and before_verb(tokens[i - 1]) and can_be_verb(token.lower()):
                closes[i] = False
                opens[i] = opens[i] and tokens[i - 1].lower() == "to"
            # Nor does one start on the verb after its subject: "Recalls 40000 vehicles"
            # out of "Carmaker recalls 40000 vehicles" (as a noun it may: "Recalls:").
            if i and tokens[i - 1].lower() not in JOINING and verb_s_form(token.lower()):
                opens[i] = False
            # Nor does one end on an adjective before its noun: "over faulty" out of
            # "over faulty airbags", "for missing Malaysian" out of "missing Malaysian
            # jet" (at a phrase's end it may: "goes minimalist"). In Title Case only a
            # people's adjective is known to be one: "'Ban Bossy' Campaign" is a name.
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            modifies = nxt and nxt.lower() not in JOINING and not hanging(nxt)
            if modifies and (people(token) or (nxt.islower() and adjective(token))):
                closes[i] = False
            # Nor does a verb after its plural subject: "Elephants prove" (lemminflect
            # lists some nouns only as verbs, so never elsewhere: "yoga retreat").
            if i and tokens[i - 1].endswith("s") and token.islower() and only_verb(token):
                opens[i] = closes[i] = False
            # Nor is a name joined by "of" cut: not "Cards" out of "House of Cards",
            # nor "Comcast Gives Customers House".
            if 0 < i < len(tokens) - 1 and (keys[i - 1], token.lower(), keys[i + 1]) in names:
                closes[i - 1] = opens[i + 1] = False
            # Nor a pair the headlines always write together: not "Autographs at Gun"
            # out of "gun show", nor "Keibler" out of "Stacy Keibler".
            if i and (keys[i - 1], keys[i]) in bonds[0]:
                closes[i - 1] = False
            if i and (keys[i - 1], keys[i]) in bonds[1]:
                opens[i] = False
        out.append((tokens, keys, opens, closes))
    return out


def _cut_clause(tokens: list[str], start: int, end: int) -> bool:
    """Whether the run holds a headline verb ("finds") and ends on the subject of the
    next one: "Study finds elephants" out of "Study finds elephants can tell"."""
    if end >= len(tokens) or not verb(tokens[end]):
        return False
    return any(hanging(t) and verb_s_form(t.lower()) for t in tokens[start + 1 : end - 1])


def _names(texts: list[str]) -> frozenset[tuple[str, str, str]]:
    """Names joined by a small word ("House of Cards", "Bank of America"), as keys: only
    a headline in sentence case shows them, but every spelling of them counts."""
    out = set()
    for text in texts:
        tokens = _TOKEN.findall(text)
        if not sentence_case(tokens):
            continue
        for before, joining, after in zip(tokens, tokens[1:], tokens[2:], strict=False):
            if joining == "of" and before[0].isupper() and after[0].isupper():
                out.add((_key(before), joining, _key(after)))
    return frozenset(out)


def _bonds(
    texts: list[str], weight: dict[str, float]
) -> tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]]:
    """Pairs of telling words (as keys) these headlines never part, in two of them or
    more: the first always followed by the second ("gun" by "show": no label ends on
    "Gun"), and the second always after the first ("Keibler" after "Stacy": none
    starts on "Keibler"); and a word only ever followed by one figure ("Chapter 11")."""
    after: dict[str, Counter[str]] = {}
    before: dict[str, Counter[str]] = {}
    for text in texts:
        for segment in _segments(text):
            # A verb is no part of a name ("Stacy Keibler" stays whole before "marries"),
            # nor can a label end on an abbreviation ("Exchange" stays free of "Mt.").
            tokens = segment.tokens
            keys = ["" if hanging(t) else k for k, t in zip(segment.keys, tokens, strict=True)]
            if segment.abbreviated:
                keys[-1] = ""
            # A verb before a figure counts it ("Recalls 25000"); a noun names it.
            for i, (token, following) in enumerate(itertools.pairwise(tokens)):
                if following[0].isdigit() and verb_s_form(token.lower()):
                    keys[i] = ""
            keys = ["", *keys, ""]
            for first, second in itertools.pairwise(keys):
                after.setdefault(first, Counter())[second] += 1
                before.setdefault(second, Counter())[first] += 1

    def never_parted(seen: dict[str, Counter[str]], flip: bool) -> frozenset[tuple[str, str]]:
        out = set()
        for key, partners in seen.items():
            (partner, count), *others = partners.most_common(2)
            pair = (partner, key) if flip else (key, partner)
            # A word only ever followed by one figure is its name, once is enough:
            # "Chapter 11" ("Test Entry 1" and "Test Entry 2" name a series).
            figure = not flip and partner[:1].isdigit() and _telling(key, weight)
            telling = all(k and _telling(k, weight) for k in pair)
            if not others and ((count >= 2 and telling) or figure):
                out.add(pair)
        return frozenset(out)

    return never_parted(after, False), never_parted(before, True)


class _Segment(NamedTuple):
    """One phrase of a headline: its tokens, their keys, and whether it ends on an
    abbreviation's full stop ("Jos." in "Jos. A. Bank")."""

    tokens: tuple[str, ...]
    keys: tuple[str, ...]
    abbreviated: bool


@lru_cache(maxsize=16384)
def _segments(text: str) -> tuple[_Segment, ...]:
    """A headline's phrases, split at punctuation and where a clause begins; cached, as
    the bonds and the runs of a theme read the same headlines."""
    parts = _SEGMENT.split(text)
    out = []
    for segment, after in zip(parts[::2], [*parts[1::2], ""], strict=True):
        tokens = tuple(_tokens(segment))
        shortened = (
            bool(tokens) and after.startswith(".") and bool(_ABBREVIATION.fullmatch(tokens[-1]))
        )
        out.append(_Segment(tokens, tuple(_key(t) for t in tokens), shortened))
    return tuple(out)


def _tokens(segment: str) -> list[str]:
    """A phrase's words, a plural's possessive apostrophe kept ("Parents' phones")
    unless it closes a quote ("'Cosmos' is back")."""
    out = []
    quoted = False
    for match in _TOKEN.finditer(segment):
        token = match.group(0)
        start = match.start()
        if start and segment[start - 1] in "'‘" and (start == 1 or segment[start - 2].isspace()):
            quoted = True
        if token.endswith(("'", "’")) and quoted:
            token, quoted = token[:-1], False
        elif segment[match.end() : match.end() + 1] in ("'", "’"):
            quoted = False  # "'Frozen' fans' song": the quote closed after "Frozen"
        if segment[match.end() : match.end() + 1] == "." and _TITLED.fullmatch(token):
            token += "."  # "Mt.": the full stop is part of the word
        out.append(token)
    return out


def _score(
    tokens: list[str],
    keys: list[str],
    weight: dict[str, float],
    shared: frozenset[str],
    best: float,
) -> float | None:
    """A run's score: its telling words' weight, less a cost per idle word and per word
    beyond two; None for one telling word padded out ("Takes Bold Step")."""
    # A verb of one headline names nothing: "Canada Enhances Arctic".
    verbs = {k for k, t in zip(keys, tokens, strict=True) if k not in shared and hanging(t)}
    scored = (set(keys) - verbs) & weight.keys()
    # "says" or "report" inside a label costs, as any word naming nothing.
    idle = sum((k not in weight or k in verbs) and k not in JOINING for k in keys)
    length = sum(k not in JOINING for k in keys)
    if len(scored) < 2 and (idle or length > 1):
        return None
    cost = IDLE_COST * idle + LENGTH_COST * max(0, length - MIN_WORDS)
    return math.fsum(weight[k] for k in scored) - best * cost  # exact: no set-order rounding


def _key(token: str) -> str:
    term = stem(token.lower().rstrip("."))
    return SYNONYMS.get(term, term)


def _telling(key: str, weight: dict[str, float]) -> bool:
    return key in weight and key not in NOISE


def _spelled(text: str) -> tuple[bool, int]:
    """Rank of a spelling: not all capitals first, then the most capitals, small
    words in lower case ("House of Cards", not "house of cards" or "House Of Cards")."""
    small = sum(w[0].isupper() for w in text.split() if w.lower() in FUNCTION_WORDS)
    return (not text.isupper(), sum(c.isupper() for c in text) - 2 * small)


def _capitalised(text: str) -> str:
    """First letter upper-cased, unless the first word is cased inside ("iOS", "eBay")."""
    first = text.split(" ", 1)[0]
    return text if any(c.isupper() for c in first[1:]) else text[0].upper() + text[1:]
