"""Whole-word matching of operator and subscriber topics against headlines."""

from __future__ import annotations

import re
from collections.abc import Iterable


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern matching any phrase as whole words, ignoring case; None for no phrases.

    "rail" matches "Rail strike" but not "Trailblazer"; inner spaces match any run
    of whitespace, so "central bank" matches across a line break.
    """
    words = sorted({p.strip().lower() for p in phrases if p.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(r"\s+".join(map(re.escape, word.split())) for word in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
