"""Which words may start or end a theme's label: the words headlines use about
anything, the headline verbs, and, from lemminflect's English word list, every
verb form and adverb no list here names.

A label that starts or ends on one of these is left hanging ("Canada Enhances",
"Stacy Keibler Marries") or says nothing ("Second", "Told").
"""

from __future__ import annotations

from functools import lru_cache

from digest.group.text import FUNCTION_WORDS

# Words headlines use about anything: never a label's first or last word.
_GENERIC_WORDS = (
    "amid amidst after over against ahead among as via despite first second third last "
    "latest big major full more most next day days week weeks year years month time "
    "today tonight people man woman told tells tell calls make makes made take takes took "
    "get gets set sets move moves plans step steps way things know need could would "
    "will may might can just still now bold ongoing rising growing global crucial "
    "turning new old good bad best worst small high low vs taking making getting "
    "january february march april june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday"
)
GENERIC = frozenset(_GENERIC_WORDS.split())

# Small words that join names ("Trump and Putin", "Canada amid tensions"): free inside a label.
JOINING = FUNCTION_WORDS | {"amid", "amidst", "despite", "ahead", "vs", "&"}

# Words that leave a label hanging ("Canada Enhances", "Coming To More Countries",
# "Banks focus"): a label neither starts nor ends on one. Verbs in every form;
# verbs that are also headline nouns ("Ban Bossy", "Trump's Cuts") only as
# -ed and -ing; past forms and small words as written. Beyond these headline
# verbs, any verb's -s form or adverb that lemminflect knows (_verb_or_adverb).
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
# Words after which a verb's base form follows: "Google to launch", "Europe must wake";
# "may", "will" and "can" only in lower case ("May jobs report", "Will Power").
_BEFORE_VERBS = frozenset(["to", "must", "would", "could", "should", "shall", "might"])
_LOWER_MODALS = frozenset(["may", "will", "can"])


def hanging(token: str) -> bool:
    lowered = token.lower()
    return lowered in HANGING or lowered.endswith(("n't", "n’t")) or _verb_or_adverb(lowered)


def load_word_list() -> None:
    """Load lemminflect's word list now (0.2-0.3 s), e.g. on a spare thread while the
    articles are grouped, rather than at the first label."""
    _lemmas("labels")


@lru_cache(maxsize=65536)
def _lemmas(lowered: str) -> dict[str, tuple[str, ...]]:
    """The word's lemmas by part of speech ("VERB", "NOUN"...), by lemminflect's word list:
    its first use loads the list (0.16 s), which commands that never label skip."""
    from lemminflect import getAllLemmas

    return getAllLemmas(lowered)


def before_verb(token: str) -> bool:
    """Whether a verb's base form follows this word: "to", or a modal."""
    return token.lower() in _BEFORE_VERBS or token in _LOWER_MODALS


def verb(token: str) -> bool:
    """A headline verb or modal, not a small word ("by", "to")."""
    lowered = token.lower()
    modal = lowered != "to" and before_verb(token)
    return modal or (hanging(token) and lowered not in FUNCTION_WORDS)


def acronym(token: str) -> bool:
    """An abbreviation in capitals ("PM", "SUVs", "CEO"): no part of a name beside it."""
    return sum(c.isupper() for c in token) > 1


# Words Title Case leaves in lower case: articles, conjunctions, short prepositions.
_TITLE_CASE_SMALL = frozenset(
    [
        *("a", "an", "the", "and", "but", "or", "nor", "for", "so", "yet", "as", "at"),
        *("by", "in", "of", "off", "on", "per", "to", "up", "via", "vs", "amid"),
    ]
)


def sentence_case(tokens: list[str]) -> bool:
    """Whether a headline shows its names by their capitals: a word other than a small
    one is in lower case ("iOS" is not), or two that Title Case would capitalise are
    ("Russia is not the Soviet Union"; one "is" slips into Title Case)."""
    lowered = [t for t in tokens if t.islower()]
    if any(t not in JOINING for t in lowered):
        return True
    return sum(t not in _TITLE_CASE_SMALL for t in lowered) >= 2


def can_be_verb(lowered: str) -> bool:
    """Whether English uses this word as a verb at all."""
    return "VERB" in _lemmas(lowered)


def verb_s_form(lowered: str) -> bool:
    """Whether this can be a verb's -s form ("recalls", "plans"), nouns too or not."""
    return lowered.endswith("s") and any(v != lowered for v in _lemmas(lowered).get("VERB", ()))


# Adjectives of a people or place lemminflect does not list: "Malaysian", "Chinese", "Irish".
_PEOPLES = ("ian", "ean", "ese", "ish")


def adjective(token: str) -> bool:
    """Whether this word, before a noun, is only its adjective ("faulty", "missing"),
    never a noun itself ("Apple TV", "municipal"), or is a people's."""
    lemmas = _lemmas(token.lower())
    return ("ADJ" in lemmas and "NOUN" not in lemmas) or people(token)


def people(token: str) -> bool:
    """Whether this is a people's or place's adjective ("Malaysian", "Chinese")."""
    lowered = token.lower()
    return len(lowered) > 4 and lowered.endswith(_PEOPLES) and not _lemmas(lowered)


def only_verb(lowered: str) -> bool:
    """Whether this is a verb's base form that English uses as nothing else ("prove")."""
    lemmas = _lemmas(lowered)
    return bool(lemmas) and lemmas.keys() <= {"VERB", "AUX"} and lowered in lemmas.get("VERB", ())


@lru_cache(maxsize=65536)
def _verb_or_adverb(lowered: str) -> bool:
    """Whether this is a verb's -s form or a word English uses only as an adverb
    ("marries", "halts", "finally", "soon").

    Other forms are left to the lists above: -ing and -ed forms are as often
    nouns and adjectives ("defence spending", "pirated films", "the Fed"), and
    a base form is often a name ("Google", "Ford").
    """
    lemmas = _lemmas(lowered)
    if lemmas.keys() == {"ADV"}:
        return True
    third_person = lowered.endswith("s") and all(lowered not in f for f in lemmas.values())
    return bool(lemmas) and lemmas.keys() <= {"VERB", "AUX"} and third_person
