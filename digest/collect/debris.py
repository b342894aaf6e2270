"""Feed debris around a summary: "Read more" tails, bylines, wire datelines, bare links.

Every pattern here is anchored to the start or the end of the text and looks
at a bounded stretch of it, so cleaning stays linear on any input.
"""

from __future__ import annotations

import re

# Bylines and datelines sit in the first words.
_HEAD_ROOM = 300
# Tails are only looked for when the whole text could survive the cut: past
# this much beyond it, the cut removes them anyway.
DEBRIS_ROOM = 400 + _HEAD_ROOM

_WIRE = (
    r"Reuters|AP|AFP|Bloomberg|UPI|dpa|DPA|Xinhua|IANS|PTI|ANI|AAP|CNN|Kyodo|Yonhap|TASS|"
    r"Anadolu|KUNA|WAM|SPA|EFE|ANSA|Interfax|Bernama|BERNAMA|AA|Agencies|AP Photo"
)
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]{0,6}\.?"
# "BEIRUT/DUBAI", "NEW YORK", "ST. LOUIS": a dateline's city is written in capitals.
_CITY = r"[A-Z][A-Z'.\-]+(?:[ /][A-Z][A-Z'.\-]+){0,3}"
_REGION = r"(?:,\s*[A-Z][\w.]*(?:\s[A-Z][\w.]*){0,2})?"
_DATE = rf",\s*{_MONTH}\s+\d{{1,2}}(?:,\s*\d{{4}})?"
_DASH = r"\s*[-\u2013\u2014:]{1,2}\s*"
_PARTICLE = r"de|van|von|da|del|al|bin|el|la|le"
_NAME = rf"[A-Z][\w'\u2019.\-]*(?:\s+(?:[A-Z][\w'\u2019.\-]*|{_PARTICLE})){{0,4}}"
_BYLINE = rf"By\s+{_NAME}(?:\s*(?:,|and|&)\s*{_NAME}){{0,4}}(?:,\s*(?:{_WIRE}))?\s+"
# "DUBAI, Feb 17 (Reuters) - ", "WASHINGTON (AP) — ", "PARIS, Feb 17 - ",
# "Feb 17 (Reuters) - ", "(Reuters) - ".
_DATELINE = (
    rf"(?:{_CITY}{_REGION}(?:{_DATE})?\s*\((?:{_WIRE})\){_DASH}"
    rf"|{_CITY}{_REGION}{_DATE}{_DASH}"
    rf"|{_MONTH}\s+\d{{1,2}}\s*\((?:{_WIRE})\){_DASH}"
    rf"|\((?:{_WIRE})\){_DASH})"
)
_HEAD = re.compile(
    rf"^(?:{_BYLINE})?{_DATELINE}"
    # AllAfrica: "[Daily Nation] Nairobi -- ", the outlet in brackets, then the place.
    r"|^\[[^\[\]]{1,60}\]\s*(?:[A-Z][\w'.]*(?:[ /-][\w'.]+){0,3}(?:,\s*[A-Z]\w*)?"
    r"\s+[-\u2013\u2014]{1,2}\s+)?"
)
_TAILS = [
    # WordPress: "The post <title> appeared first on <site>."
    re.compile(r"\s*The post\s.{1,300}?\sappeared first on\s.{1,120}$"),
    re.compile(
        r"\s*(?:Continue reading|Keep reading|Read more|Read More|READ MORE|Read on|"
        r"Read the (?:full|rest of the|whole) (?:story|article|post|piece|report)|"
        r"Read full (?:story|article|post)|Click here to read more|Click here for more|"
        r"\(more\u2026\)|\(more\.\.\.\)|More\u2026|More\.\.\.)"
        # what may follow: an arrow, "…", or the title and an arrow (WordPress)
        r"(?:\s*[\u2192\u00bb\u203a>\u2026]+|\s*\.{2,3}|\s+(?:at|on|here|of)\b.{0,80}?"
        r"|\s+.{1,150}?\s*[\u2192\u00bb\u203a>])?\s*[.!:]?\s*$"
    ),
    re.compile(r"\s*(?:View fullsize\s*)+$"),
    re.compile(r"^(?:\d+\s+)?Comments?$|\s+\d+\s+Comments?$"),
]
# "[…]" at the end means "there is more": one ellipsis says it, after a word.
_ELLIPSIS_MARK = re.compile(r"([.!?\u2026])?\s*[\[(](?:\u2026|\.\.\.)[\])]\s*$")
# Squarespace galleries leave a "View fullsize" per picture anywhere in the text.
_GALLERY = re.compile(r"(?:View fullsize\s+)+")
# hnrss.org: links and points, no prose.
_HN = re.compile(r"^Article URL:\s*\S+\s+Comments URL:\s*\S+\s+Points:\s*\d+\s+# Comments:\s*\d+$")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_WORDS = re.compile(r"[^\W\d_]{2}")


def strip_debris(text: str, limit: int, *, whole: bool = True) -> str:
    """`text` (whitespace folded) without the debris feeds wrap around a summary.

    `whole` is False when `text` is only the start of a longer text: its end is
    then no tail.
    """
    if "View fullsize" in text:
        text = _GALLERY.sub("", text)
    head = _HEAD.match(text[:_HEAD_ROOM])
    if head and head.end() < len(text):
        text = text[head.end() :]
    if whole and len(text) <= limit + DEBRIS_ROOM:
        for _ in range(3):  # tails stack: "[…] Read more The post ... appeared first on ..."
            before = text
            for tail in _TAILS:
                text = tail.sub("", text)
            text = _ELLIPSIS_MARK.sub(lambda m: m.group(1) or "\u2026", text)
            if text == before:
                break
    start = text[: limit + DEBRIS_ROOM]
    if _HN.match(text) or (_URL.search(start) and not _WORDS.search(_URL.sub(" ", start))):
        return ""
    return text.strip()
