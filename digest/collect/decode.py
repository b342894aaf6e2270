"""Find the text encoding of feed bytes, whatever the feed declared.

Feeds declare encodings wrongly often enough (Windows-1252 labelled UTF-8, UTF-8
labelled Latin-1) that a declaration is only a first guess: the first candidate
that decodes strictly wins, in the order a browser's feed reader would try them.
"""

from __future__ import annotations

import codecs
import re

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
# Browsers read these labels as Windows-1252, a superset that also decodes curly quotes.
_AS_CP1252 = {"iso-8859-1", "latin-1", "latin1", "l1", "us-ascii", "ascii", "iso8859-1"}


def to_utf8(content: bytes, content_type: str = "") -> bytes:
    """The document re-encoded as UTF-8 (BOM removed), for a parser told it is UTF-8."""
    for bom, name in _BOMS:
        if content.startswith(bom):
            return content[len(bom) :].decode(name, errors="replace").encode("utf-8")
    # UTF-16 without a BOM still starts with "<" next to a zero byte.
    if content[:2] == b"<\x00":
        return content.decode("utf-16-le", errors="replace").encode("utf-8")
    if content[:2] == b"\x00<":
        return content.decode("utf-16-be", errors="replace").encode("utf-8")
    for name in _candidates(content, content_type):
        try:
            text = content.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
        return content if name == "utf-8" else text.encode("utf-8")
    return content.decode("cp1252", errors="replace").encode("utf-8")


def _candidates(content: bytes, content_type: str) -> list[str]:
    declared = []
    if match := _XML_DECL.match(content[:512]):
        declared.append(match.group(1).decode("ascii").lower())
    if match := _CHARSET.search(content_type):
        declared.append(match.group(1).lower())
    names = []
    for name in declared:
        if name in _AS_CP1252:
            # Valid multi-byte UTF-8 is almost never real Latin-1: trust the bytes.
            names += ["utf-8", "cp1252"]
        elif not name.startswith(("utf-16", "utf-32", "ucs")):
            names.append(name)
    return [*dict.fromkeys([*names, "utf-8", "cp1252"])]
