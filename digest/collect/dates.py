"""Read the dates feeds write (RFC 822, ISO 8601 and their sloppy cousins) as aware UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_tz

# Zone names RFC 822 parsers do not all know, as offsets in hours.
_ZONES = {
    "UT": 0,
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
    "BST": 1,
    "CET": 1,
    "CEST": 2,
    "EET": 2,
    "EEST": 3,
    "IST": 5.5,
    "JST": 9,
    "AEST": 10,
    "AEDT": 11,
}
_ISO = re.compile(
    r"^(\d{4})-?(\d{2})-?(\d{2})"
    r"(?:[T ](\d{2}):?(\d{2})(?::?(\d{2})(?:[.,]\d+)?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?$",
    re.IGNORECASE,
)
_TRAILING_ZONE = re.compile(r"\s([A-Z]{1,5})$")


def parse_date(value: str | None) -> datetime | None:
    """An aware UTC datetime, or None when the text is not a date we can trust."""
    if not value:
        return None
    value = value.strip()
    if not value:
        return None
    parsed = _iso(value) if value[0].isdigit() else None
    if parsed is None:
        parsed = _rfc822(value)
    if parsed is None or not 1970 <= parsed.year <= 2200:
        return None
    return parsed


def _iso(value: str) -> datetime | None:
    match = _ISO.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None
    offset = timedelta(0)
    if zone and zone.upper() != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    # A date without a zone is taken as UTC: the least surprising guess for a feed.
    return (moment - offset).replace(tzinfo=UTC)


def _rfc822(value: str) -> datetime | None:
    text = value.replace(",", ", ").replace("  ", " ")
    zone_hours = None
    if match := _TRAILING_ZONE.search(text):
        zone_hours = _ZONES.get(match.group(1).upper())
        if zone_hours is not None:
            text = text[: match.start()] + " +0000"
    try:
        parts = parsedate_tz(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parts is None:
        return None
    try:
        moment = datetime(*parts[:6])
    except ValueError:
        return None
    offset = timedelta(seconds=parts[9] or 0)
    if zone_hours is not None:
        offset = timedelta(hours=zone_hours)
    return (moment - offset).replace(tzinfo=UTC)
