"""The named states of records: subscribers, mail formats, deliveries and send runs.

Plain enums, without pydantic, so the command line can offer them as choices
without loading the models.
"""

from __future__ import annotations

from enum import StrEnum


class SubscriberStatus(StrEnum):
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"


class DeliveryState(StrEnum):
    """Where one subscriber's copy of one edition stands (a row of the delivery ledger).

    sending -> sent | failed | deferred | uncertain; deferred -> sending on a later
    run; a subscriber with nothing to read is recorded skipped without a message.
    """

    sending = "sending"  # intent recorded with its Message-ID, before the message goes out
    sent = "sent"  # the server replied 250
    failed = "failed"  # refused for good (5xx), or 4xx until attempts ran out
    deferred = "deferred"  # refused for now (4xx): the next run tries again
    skipped = "skipped"  # nothing to read for them today: no message
    uncertain = "uncertain"  # sent, but the server never answered: it may have it; not resent

    @property
    def final(self) -> bool:
        """Never sent again for the same edition."""
        return self in FINAL_STATES

    @property
    def has_edition(self) -> bool:
        """The subscriber has all they will get of the edition."""
        return self in HAS_EDITION


FINAL_STATES = frozenset(
    {DeliveryState.sent, DeliveryState.failed, DeliveryState.skipped, DeliveryState.uncertain}
)
# Uncertain copies count as delivered: sending again could only duplicate them.
HAS_EDITION = frozenset({DeliveryState.sent, DeliveryState.skipped, DeliveryState.uncertain})


class RunStatus(StrEnum):
    """How a send run ended, as the `runs` table and `digest runs` show it."""

    running = "running"
    done = "done"  # every active subscriber (of the run's audience) has the edition
    partial = "partial"  # some are still without it: run again
    nothing = "nothing"  # no active subscribers
    error = "error"  # stopped by an error
    failed = "failed"  # the feeds were down: nothing stored or sent (the report says why)
    interrupted = "interrupted"  # shown for a run killed mid-way, once its lock has lapsed


class MailFormat(StrEnum):
    html = "html"
    text = "text"
