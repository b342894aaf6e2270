"""Where things live on the web: one place for the paths messages and `digest serve` share.

A message links to pages the web app must serve at exactly these paths, so
both sides build them here.
"""

from __future__ import annotations

import re
import unicodedata

from digest.config import Settings
from digest.tokens import subscriber_url

ARCHIVE_PATH = "/editions"
FEED_PATH = "/feed.xml"
PREFERENCES_PAGE = "preferences"
UNSUBSCRIBE_PAGE = "unsubscribe"

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def edition_slug(edition_id: str) -> str:
    """The edition's part of its URL: the date in 'digest/2026-03-19'."""
    return edition_id.partition("/")[2] or edition_id


def edition_path(edition_id: str) -> str:
    return f"{ARCHIVE_PATH}/{edition_slug(edition_id)}"


def edition_url(settings: Settings, edition_id: str) -> str | None:
    """The edition's public page, or None when there is none (no DIGEST_PUBLIC_URL, or
    DIGEST_ARCHIVE=off): a message must not point at a page nobody can open."""
    if not settings.web_editions:
        return None
    return settings.public_url.rstrip("/") + edition_path(edition_id)


def anchor(label: str) -> str:
    """A theme's fragment id on the edition page, the same in the email's "+N more" link."""
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    return "theme-" + (_NOT_SLUG.sub("-", ascii_label.lower()).strip("-") or "x")


def subscriber_link(settings: Settings, secret: str, public_id: str, page: str) -> str:
    """A subscriber's signed link to one of their pages (preferences, unsubscribe)."""
    return subscriber_url(settings.links_url, secret, public_id, page)
