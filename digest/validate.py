"""The two checks every entry point shares: an email address and a time zone.

Settings, the command line, the CSV import and the preferences page all call
these, so a value accepted in one place is accepted in all, with the same words.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import InvalidField


def email_address(value: str) -> str:
    """The address in its normalised form (domain lower-cased, IDNA), or InvalidField."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidField(f"invalid email address {value!r}: {exc}") from None


def time_zone(value: str) -> str:
    """An IANA time zone name, checked, or InvalidField."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField(
            f"unknown time zone {value!r}; use an IANA name such as 'Europe/Paris'"
        ) from None
    return value
