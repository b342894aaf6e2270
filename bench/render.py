"""Benchmark: rendering one digest per subscriber, the cost paid once per recipient.

Renders a 12-theme, 120-article edition (and an oversized one that must be
trimmed to fit Gmail's clip) for many subscribers, and compares it with a
baseline measured in the same process: the same templates rendered by bare
Jinja2, with no CSS inlining and no size budget.

    python bench/render.py [subscribers]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

from digest.config import Settings
from digest.models import Article, Edition, Subscriber, Theme
from digest.render import Renderer, ThemeView

END = datetime(2026, 3, 19, 7, 0, tzinfo=UTC)


def make_edition(themes: int, per_theme: int, title_words: int) -> Edition:
    words = " ".join(["considerably"] * title_words)
    return Edition(
        id="bench/2026-03-19",
        generated_at=END,
        window_start=END - timedelta(hours=24),
        window_end=END,
        feeds=[],
        themes=[
            Theme(
                label=f"Theme {t}",
                articles=[
                    Article(
                        key=f"https://news.example.com/{t}/{i}",
                        title=f"Story {t}-{i}: {words}"[:200],
                        url=f"https://news.example.com/{t}/{i}?ref=feed",
                        source=f"Source {i % 5}",
                        feed_url="https://news.example.com/feed.xml",
                        published=END - timedelta(minutes=7 * (t * per_theme + i)),
                        summary="A sentence of summary that runs on. " * 8,
                        also_reported_by=("Other Paper",),
                    )
                    for i in range(per_theme)
                ],
            )
            for t in range(themes)
        ],
    )


def timed(render, subscribers: list[Subscriber]) -> float:
    began = time.perf_counter()
    for subscriber in subscribers:
        render(subscriber)
    return time.perf_counter() - began


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    settings = Settings(
        _env_file=None,
        secret_key="bench-secret-key-long-enough-to-sign",
        postal_address="1 Example St",
    )  # type: ignore[call-arg]
    renderer = Renderer(settings)
    subscribers = [
        Subscriber(email=f"reader{n}@example.com", timezone=("UTC", "Europe/Paris")[n % 2])
        for n in range(count)
    ]
    for name, edition in (
        ("12 themes x 10 articles", make_edition(12, 10, 30)),
        ("14 themes x 40 articles (trimmed)", make_edition(14, 40, 60)),
    ):
        views = [ThemeView.of(t) for t in edition.themes]
        template = renderer.html_env.get_template("digest.html")

        def bare(subscriber: Subscriber, edition=edition, views=views, template=template) -> str:
            context = renderer._context(edition, subscriber, views)
            return template.render({**context, "themes": views, "omitted": 0})

        def full(subscriber: Subscriber, edition=edition) -> str:
            return renderer.render(edition, subscriber).html or ""

        baseline = timed(bare, subscribers)
        measured = timed(full, subscribers)
        size = len(full(subscribers[0]).encode())
        print(
            f"{name}: {count / measured:,.0f} digests/s ({1000 * measured / count:.2f} ms each, "
            f"HTML {size / 1000:.1f} KB); bare Jinja2 baseline {count / baseline:,.0f}/s; "
            f"ratio {measured / baseline:.1f}x the baseline's time"
        )


if __name__ == "__main__":
    main()
