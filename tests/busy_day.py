"""Busy news days built from real headlines (the shared UCI sample), grouped for real."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta

import pytest
from support import SHARED_DATA

from digest.config import Settings
from digest.group import GroupOptions, group
from digest.models import Article, Edition

SAMPLE = SHARED_DATA / "uci-news-stories-dev.csv"


def busy_day(headlines: int, day: str = "2026-03-19", seed: int = 15) -> Edition:
    """An edition of `headlines` real headlines, grouped with the default caps."""
    if not SAMPLE.is_file():
        pytest.fail(f"the shared headline sample is missing at {SAMPLE}: set SHARED_DATA")
    with SAMPLE.open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    rows = random.Random(seed).sample(rows, headlines)
    end = datetime.fromisoformat(f"{day}T07:00:00+00:00").astimezone(UTC)
    articles = [
        Article(
            key=row["URL"],
            title=row["TITLE"],
            url=row["URL"],
            source=row["PUBLISHER"],
            feed_url=f"https://{row['HOSTNAME']}/feed",
            published=end - timedelta(minutes=3 * n + 1),
        )
        for n, row in enumerate(rows)
    ]
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return Edition(
        id=f"digest/{day}",
        generated_at=end,
        window_start=end - timedelta(hours=24),
        window_end=end,
        themes=group(articles, GroupOptions.from_settings(settings)),
        feeds=[],
    )
