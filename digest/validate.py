"""Checks that more than one place shares: an email address, a time zone, a model folder.

Settings, the command line, the CSV import and the preferences page all call
these, so a value accepted in one place is accepted in all, with the same words.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import InvalidField


def email_address(value: str) -> str:
    """The address in its normalised form (domain lower-cased, IDNA), or InvalidField."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        reason = str(exc).rstrip(".")  # it ends a sentence; a hint may follow
        raise InvalidField(f"invalid email address {value!r}: {reason}") from None


def time_zone(value: str) -> str:
    """An IANA time zone name, checked, or InvalidField."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField(
            f"unknown time zone {value!r}; use an IANA name such as 'Europe/Paris'"
        ) from None
    return value


# An operator's own model (DIGEST_EMBEDDING_MODEL) is a folder as model2vec saves
# one: the embedding matrix and its tokenizer (config.json and the rest unused).
MODEL_FILES = ("model.safetensors", "tokenizer.json")
MODEL_FIX = (
    f"point DIGEST_EMBEDDING_MODEL at a model2vec folder ({', '.join(MODEL_FILES)}) "
    "or leave it empty for the bundled model"
)


def model_folder(value: Path) -> Path:
    """The folder, resolved, if it holds a model2vec model's files, or InvalidField.

    Settings check it when they load, so a wrong path stops every command at
    once, not the morning run; grouping and `digest check` read the files.
    """
    value = value.expanduser().resolve()
    if not value.is_dir():
        raise InvalidField(f"{value} is not a folder; {MODEL_FIX}")
    missing = [name for name in MODEL_FILES if not (value / name).is_file()]
    if missing:
        raise InvalidField(f"{value} has no {' and no '.join(missing)}; {MODEL_FIX}")
    return value
