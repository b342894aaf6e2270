"""Every exception digest raises on purpose, in one place.

    DigestError            an operator can act on it: the message says what and how to fix it;
     │                     the command line prints it as one line and exits 1
     ├── ConfigError       a DIGEST_* setting is wrong; one line per problem (exit 2)
     ├── InvalidField      one value is wrong (settings, CLI, CSV import, web form); also a
     │                     ValueError, so a settings validator raises it as it is
     ├── LockHeld          another run holds the lock: it is sending this edition (exit 5)
     ├── CollectionFailed  the feeds are down: nothing stored or sent, a rerun collects (exit 6)
     ├── TemplateError     a template could not be loaded or rendered; names the file and line
     ├── BadToken          a signed link was forged, altered or truncated
     ├── ModelError        grouping's embedding model is missing or unreadable
     ├── SMTPUnavailable   the SMTP server could not be reached or refused the login
 │    └── SecurityMismatch  DIGEST_SMTP_SECURITY does not match what the server speaks
     └── SenderRefused     the server refuses our sender address outright: stop the run

    FeedError              one feed failed; recorded in its FeedReport, never stops a run
     ├── FetchError        the feed could not be fetched
     └── FeedParseError    the bytes are not a feed we can read
          ├── ParseTimeout the feed took longer than DIGEST_PARSE_TIMEOUT to parse
          └── OpmlError    the file is not OPML we can read

Private control-flow exceptions (a retry, a reconnect) stay in the module that raises
and catches them.
"""

from __future__ import annotations


class DigestError(Exception):
    """An error an operator can act on: the message says what and how to fix it."""


class ConfigError(DigestError):
    """One or more settings are wrong; the message has one line per problem."""


class InvalidField(DigestError, ValueError):
    """One field's value is wrong; the message says why and what is accepted."""


class LockHeld(DigestError):
    """Another run holds the lock (for example, is sending the same edition)."""


class CollectionFailed(DigestError):
    """The morning's collection failed wholesale (see digest.outage): nothing was stored
    or sent. `missed` when DIGEST_SEND_DEADLINE has passed with nothing to send."""

    def __init__(self, message: str, reason: str, *, missed: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.missed = missed


class TemplateError(DigestError):
    """A template could not be loaded or rendered; names the file and line."""


class BadToken(DigestError):
    """The token is forged, altered or truncated."""


class ModelError(DigestError):
    """Grouping's embedding model is missing from its package, or the operator's
    DIGEST_EMBEDDING_MODEL folder holds files that are not a model2vec model."""


class SMTPUnavailable(DigestError):
    """The SMTP server could not be reached or refused the login."""


class SecurityMismatch(SMTPUnavailable):
    """DIGEST_SMTP_SECURITY does not match what the server speaks on that port."""


class SenderRefused(DigestError):
    """The server refuses our sender address outright: no message can go, so stop."""


class FeedError(Exception):
    """One feed failed; the message says why, and it goes into that feed's report."""


class FetchError(FeedError):
    """The feed could not be fetched; the message says why."""


class FeedParseError(FeedError):
    """The bytes are not a feed we can read."""


class ParseTimeout(FeedParseError):
    """The feed took longer than its budget (DIGEST_PARSE_TIMEOUT) to parse."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        super().__init__(
            f"took longer than {budget:g}s to parse (DIGEST_PARSE_TIMEOUT): the feed is too "
            "large or malformed; ask its publisher, or raise the setting"
        )

    def __reduce__(self) -> tuple[type, tuple[float]]:
        # Raised in parsing processes: rebuilt in the parent from the budget, not the message.
        return (ParseTimeout, (self.budget,))


class OpmlError(FeedParseError):
    """The file is not OPML we can read."""
