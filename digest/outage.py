"""When a morning's collection is a feed outage rather than a quiet day.

The rule (documented in the README, "When the feeds are down"):

- every feed failed: an outage;
- some feeds failed and the articles collected are fewer than
  DIGEST_COLLECT_MIN_SHARE of the median of recent editions (up to the last
  RECENT_DAYS stored ones): an outage;
- otherwise, however few articles there are, the day is what it is: a feed
  that answers with nothing new makes a quiet day, never an outage.

An outage is never stored as the day's edition and never skips a subscriber:
the run is recorded as failed with the reason, and the next start collects
again. From DIGEST_SEND_DEADLINE on, what was collected is sent if it has at
least one article; with nothing at all the morning is recorded as missed.
"""

from __future__ import annotations

from statistics import median

from digest.models import FeedReport

RECENT_DAYS = 7


def outage_reason(
    feeds: list[FeedReport], articles: int, recent: list[int], min_share: float
) -> str | None:
    """Why this collection is an outage, or None when it may be sent as it is."""
    failed = sum(not f.ok for f in feeds)
    if not feeds or not failed:
        return None
    if failed == len(feeds):
        return f"every feed failed ({failed} of {len(feeds)})"
    typical = median(recent) if recent else 0
    if min_share > 0 and typical > 0 and articles < min_share * typical:
        return (
            f"{failed} of {len(feeds)} feeds failed and only {articles} articles were "
            f"collected, against about {typical:.0f} on recent days "
            f"(below DIGEST_COLLECT_MIN_SHARE={min_share:g})"
        )
    return None


def enough_at_deadline(articles: int) -> bool:
    """At the deadline, anything at all beats a missed morning."""
    return articles > 0
