"""Which feeds a run reads: --feeds, else DIGEST_FEEDS plus `digest feeds add`, else samples.

Kept in the collect stage so that commands that only fetch (`digest feeds check`,
`digest check`) do not import grouping, rendering and delivery.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from digest.config import SAMPLE_FEEDS_DIR, Settings

if TYPE_CHECKING:
    from digest.db.feeds import FeedRepository

log = logging.getLogger(__name__)


def sample_sources() -> list[str]:
    """The bundled offline sample feeds, used when no feed is configured."""
    return sorted(str(p) for p in SAMPLE_FEEDS_DIR.iterdir() if p.suffix == ".xml")


def resolve_sources(
    settings: Settings, feeds: FeedRepository, override: list[str] | None = None
) -> list[str]:
    """Feeds from --feeds, else DIGEST_FEEDS plus `digest feeds add`, else the samples."""
    if override:
        return list(dict.fromkeys(override))
    configured = list(dict.fromkeys([*settings.feeds, *feeds.urls()]))
    if configured:
        return configured
    log.info("no feeds configured (DIGEST_FEEDS or `digest feeds add`): using the bundled samples")
    return sample_sources()
