"""Plain typed models passed between the pipeline stages.

collect -> list[Article] -> group -> list[Theme] -> Edition -> render -> deliver.
They carry data only: no I/O, no database handles, so each stage can be
tested with values built by hand.
"""

from __future__ import annotations

import secrets
import zlib
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from digest.errors import DigestError
from digest.states import (  # noqa: F401  (re-exported: the models use them)
    DeliveryState,
    MailFormat,
    RunStatus,
    SubscriberStatus,
)


class Article(BaseModel):
    """One news item, with a clean title and a short plain-text summary."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="Stable identity: the canonical URL, else the GUID.")
    title: str
    url: str
    source: str = Field(description="Publisher name, from the feed's title.")
    feed_url: str
    published: AwareDatetime = Field(description="UTC; first-seen time when undated.")
    summary: str = ""
    dated: bool = Field(True, description="False when the time is the first-seen time.")
    also_reported_by: tuple[str, ...] = Field(
        (), description="Other sources that carried the same story."
    )
    shown: bool = Field(True, description="False when a cap or a folded duplicate hides it.")
    duplicate_of: str | None = Field(
        None, description="Key of the article that stands for this same report."
    )
    story: int = Field(0, description="Number of its story (one event) in the edition; 0 unset.")

    def replace(self, **changes: Any) -> Article:
        """`model_copy(update=changes)`, unvalidated like it, without its generic copying.

        Grouping copies most articles of a day twice (about 38,000 copies at
        20,000 articles): measured 6 µs a copy here against 8 µs for `model_copy`.
        tests/test_group.py checks the copies are the same.
        """
        copied = Article.__new__(Article)
        object.__setattr__(copied, "__dict__", {**self.__dict__, **changes})
        object.__setattr__(copied, "__pydantic_extra__", None)
        object.__setattr__(copied, "__pydantic_private__", None)
        fields_set = self.__pydantic_fields_set__ | changes.keys()
        object.__setattr__(copied, "__pydantic_fields_set__", fields_set)
        return copied


class FeedReport(BaseModel):
    """What happened to one feed during collection."""

    url: str
    title: str = ""
    ok: bool
    error: str | None = None
    articles: int = 0
    not_modified: bool = False
    seconds: float = 0.0
    failures: int = Field(0, description="Consecutive failed runs, this one included.")
    dead: bool = Field(False, description="Failed DIGEST_FEED_DEAD_AFTER runs in a row.")


class Theme(BaseModel):
    """A group of articles about one subject; the first article is the lead."""

    label: str
    articles: list[Article]
    shown: bool = True
    catch_all: bool = Field(False, description="The last section: articles related to no other.")

    @property
    def lead(self) -> Article:
        return self.articles[0]

    @property
    def more(self) -> list[Article]:
        """The rest as rendered: folded copies and articles over the cap are left out."""
        return [a for a in self.articles[1:] if a.shown]


class Edition(BaseModel):
    """The whole digest for one day, before it is rendered for anyone."""

    id: str = Field(description="Stable per list and edition date, e.g. 'digest/2026-03-19'.")
    generated_at: AwareDatetime
    window_start: AwareDatetime
    window_end: AwareDatetime
    themes: list[Theme]
    feeds: list[FeedReport]

    @property
    def article_count(self) -> int:
        return sum(len(t.articles) for t in self.themes)


def counted(number: int, noun: str) -> str:
    """ "1 theme", "3 themes": a count with its noun, for every line that says how many."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def new_public_id() -> str:
    """A subscriber's opaque link id: random, so it says nothing about who they are."""
    return secrets.token_urlsafe(16)


class Subscriber(BaseModel):
    """Someone who receives the digest."""

    email: str
    name: str = ""
    status: SubscriberStatus = SubscriberStatus.active
    timezone: str = "UTC"
    delivery_hour: int | None = None
    format: MailFormat = MailFormat.html
    topics_include: list[str] = Field(default_factory=list)
    topics_exclude: list[str] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    public_id: str = Field(
        default_factory=new_public_id,
        description="Opaque id in the subscriber's links; stored ones come from the database.",
    )
    paused_until: datetime | None = Field(None, description="Nothing is sent before this.")


class Shard(BaseModel):
    """One of N workers' share of the subscribers (`digest run --shard K/N`, K from 0).

    The share is a stable hash of the address, the same on every host, so N
    workers together cover every subscriber exactly once.
    """

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    count: int = Field(ge=1)

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            index, count = (int(part) for part in text.split("/"))
            if not 0 <= index < count:
                raise ValueError
        except ValueError:
            raise DigestError(
                f"--shard {text!r}: write K/N with 0 <= K < N, e.g. 0/4 for the first of four"
            ) from None
        return cls(index=index, count=count)

    def __contains__(self, email: str) -> bool:
        return zlib.crc32(email.encode("utf-8")) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class RenderedDigest(BaseModel):
    """One subscriber's digest, ready to be wrapped in a MIME message."""

    subject: str
    text: str
    html: str | None = Field(None, description="None for text-only subscribers.")


class DeliveryResult(BaseModel):
    """The final outcome of sending one edition to one subscriber, after any retries."""

    email: str
    ok: bool
    message_id: str | None = None
    error: str | None = None
    permanent: bool = Field(False, description="A 5xx reply: not tried again for this edition.")
    bounce: bool = Field(False, description="The address itself was refused for good.")
    attempts: int = 1
    uncertain: bool = Field(
        False,
        description=(
            "The message data went out but no reply came, even after a second wait and "
            "the one resend allowed per run: the server may have it, so it is never sent again."
        ),
    )


def edition_json(edition: Edition) -> dict:
    """The public JSON shape of an edition (`digest preview --format json`).

    Later versions may add keys, never remove these.
    """

    def article(a: Article) -> dict:
        return {
            "title": a.title,
            "url": a.url,
            "source": a.source,
            "published": a.published.isoformat(),
            "summary": a.summary,
            "also_reported_by": list(a.also_reported_by),
            "shown": a.shown,
            "duplicate_of": a.duplicate_of,
            "story": a.story,
        }

    return {
        "id": edition.id,
        "generated_at": edition.generated_at.isoformat(),
        "window": {
            "start": edition.window_start.isoformat(),
            "end": edition.window_end.isoformat(),
        },
        "themes": [
            {
                "label": t.label,
                "shown": t.shown,
                "catch_all": t.catch_all,
                "lead": article(t.lead),
                "articles": [article(a) for a in t.articles],
            }
            for t in edition.themes
        ],
        "feeds": [
            {
                "url": f.url,
                "title": f.title,
                "ok": f.ok,
                "error": f.error,
                "articles": f.articles,
                "seconds": round(f.seconds, 3),
                "not_modified": f.not_modified,
                "dead": f.dead,
            }
            for f in edition.feeds
        ],
    }
