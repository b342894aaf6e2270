"""A subscriber's own pages, reached through the signed link in every message.

Subscribers have no accounts: the token (digest.tokens) is the whole proof of
who they are. It names an opaque public id, so it keeps working after their
address changes; tokens from before public ids name the address and still work.

- `GET /unsubscribe?token=…` a confirmation page with one button;
- `POST /unsubscribe?token=…` RFC 8058 one-click unsubscribe, as sent by
  Gmail's and Yahoo's button with the body `List-Unsubscribe=One-Click`;
- `POST /resubscribe?token=…` undoes it, from the page unsubscribing leads to;
- `GET|POST /preferences?token=…` topics, delivery hour, time zone, format, pause.

A forged, altered or truncated token gets a 400 page and changes nothing.
Log lines name the subscriber by their log reference (digest.logs.subscriber_ref,
as `digest subscribers show` prints it), never by the address or the token.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import urlencode
from zoneinfo import available_timezones

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from digest import subscribers as records
from digest.config import Settings
from digest.db.editions import EditionRepository
from digest.db.subscribers import SubscriberRepository
from digest.links import PREFERENCES_PAGE
from digest.logs import subscriber_ref
from digest.models import Subscriber, SubscriberStatus
from digest.tokens import read_token

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024
# The zones the form offers, and so the only ones it accepts: the IANA regions and UTC,
# without aliases such as 'localtime', 'posixrules' or 'Factory'.
_REGIONS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia",
            "Europe", "Indian", "Pacific")  # fmt: skip
TIMEZONES = ["UTC", *sorted(z for z in available_timezones() if z.split("/")[0] in _REGIONS)]
TOPICS_SEPARATORS = ";,\n"
PAUSE_DAYS = (3, 7, 14, 30)
RECENT_EDITIONS = 7  # whose theme labels the form offers to follow or mute


def routes(
    settings: Settings,
    store: SubscriberRepository,
    editions: EditionRepository,
    pages,
    secret: str,
) -> list[Route]:
    """The subscriber pages; `pages` renders templates/web/."""
    prefix = f"{settings.list_id}/"

    async def subscriber(request: Request) -> tuple[Subscriber | None, str]:
        """The token's subscriber (None if no longer on the list) and the token itself."""
        token = request.query_params.get("token", "")
        subject = read_token(secret, token)
        if subject.public_id is not None:
            sub = await run_in_threadpool(store.by_public_id, subject.public_id)
        else:
            sub = await run_in_threadpool(store.get, subject.email or "")
        return sub, token

    async def unsubscribe_page(request: Request) -> Response:
        sub, token = await subscriber(request)
        return pages.render("unsubscribe.html", subscriber=sub, token=token)

    async def unsubscribe(request: Request) -> Response:
        # RFC 8058: the signed URL is the whole authorisation; the body
        # (List-Unsubscribe=One-Click) only says a button was pressed, so it
        # is not required: a POST is never sent by link scanners.
        sub, token = await subscriber(request)
        if sub is not None and sub.status is not SubscriberStatus.unsubscribed:
            sub = await run_in_threadpool(
                store.set_status, sub.email, SubscriberStatus.unsubscribed
            )
            log.info("subscriber %s unsubscribed", subscriber_ref(sub.email) if sub else "?")
        return pages.render("unsubscribed.html", subscriber=sub, token=token)

    async def resubscribe(request: Request) -> Response:
        sub, token = await subscriber(request)
        if sub is not None and sub.status is SubscriberStatus.unsubscribed:
            # From 'unsubscribed' only, checked as it is written: a bounced address, or
            # one bounced since the page was shown, stays bounced.
            sub = await run_in_threadpool(
                partial(
                    store.set_status,
                    sub.email,
                    SubscriberStatus.active,
                    only_from=SubscriberStatus.unsubscribed,
                )
            )
            log.info("subscriber %s resubscribed", subscriber_ref(sub.email) if sub else "?")
        return pages.render("resubscribed.html", subscriber=sub, token=token)

    async def preferences_page(request: Request) -> Response:
        sub, token = await subscriber(request)
        if sub is None:
            return pages.render("unknown.html", status_code=404)
        saved = request.query_params.get("saved") == "1"
        return await _preferences(
            pages, editions, sub, edition_prefix=prefix, token=token, saved=saved
        )

    async def save_preferences(request: Request) -> Response:
        sub, token = await subscriber(request)
        if sub is None:
            return pages.render("unknown.html", status_code=404)
        form = await _read_form(request)
        try:
            changed, pause = _changes(sub, form)
        except records.InvalidField as exc:
            return await _preferences(
                pages, editions, sub, edition_prefix=prefix, token=token, error=str(exc), form=form
            )
        await run_in_threadpool(store.update, changed)
        if pause is not None:
            until = datetime.now(UTC) + timedelta(days=pause) if pause else None
            await run_in_threadpool(store.pause, sub.email, until)
        log.info("subscriber %s changed their preferences", subscriber_ref(sub.email))
        # Post/redirect/get, so reloading the page does not post again; the target is
        # under DIGEST_PUBLIC_URL, never built from the request's Host header.
        query = urlencode({"token": token, "saved": "1"})
        return RedirectResponse(f"{settings.links_url}/{PREFERENCES_PAGE}?{query}", 303)

    return [
        Route("/unsubscribe", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe", unsubscribe, methods=["POST"]),
        Route("/resubscribe", resubscribe, methods=["POST"]),
        Route("/preferences", preferences_page, methods=["GET"]),
        Route("/preferences", save_preferences, methods=["POST"]),
    ]


def _changes(sub: Subscriber, form: dict[str, list[str]]) -> tuple[Subscriber, int | None]:
    """The subscriber with the form's choices, and the pause asked for (None: unchanged,
    0: resume now, N: days); InvalidField names the first wrong field."""

    def one(name: str) -> str:
        return (form.get(name) or [""])[0]

    def topics(typed: str, ticked: str) -> list[str]:
        return records.parse_topics([*form.get(ticked, []), *_split(one(typed))])

    zone = one("timezone").strip() or sub.timezone
    if zone not in TIMEZONES and zone != sub.timezone:
        raise records.InvalidField(f"time zone {zone[:64]!r} is not one of the listed zones")
    pause_text = one("pause").strip()
    if pause_text and not (pause_text == "0" or pause_text in map(str, PAUSE_DAYS)):
        raise records.InvalidField(f"pause {pause_text[:20]!r} is not one of the listed choices")
    changed = sub.model_copy(
        update={
            "topics_include": topics("topics_include", "follow"),
            "topics_exclude": topics("topics_exclude", "mute"),
            "delivery_hour": records.parse_delivery_hour(one("delivery_hour")),
            "timezone": records.parse_timezone(zone, sub.timezone),
            "format": records.parse_format(one("format")),
        }
    )
    return changed, int(pause_text) if pause_text else None


def _split(text: str) -> list[str]:
    for separator in TOPICS_SEPARATORS[1:]:
        text = text.replace(separator, TOPICS_SEPARATORS[0])
    return text.split(TOPICS_SEPARATORS[0])


async def _preferences(
    pages,
    editions: EditionRepository,
    sub: Subscriber,
    *,
    edition_prefix: str,
    token: str,
    saved: bool = False,
    error: str | None = None,
    form: dict[str, list[str]] | None = None,
) -> Response:
    """The preferences form, filled from the stored record or from a refused post.

    Recent theme labels are offered as boxes to tick; anything else the subscriber
    follows or mutes is in the typed fields.
    """
    labels = await run_in_threadpool(_recent_labels, editions, edition_prefix)
    known = {label.lower() for label in labels}
    values = {
        "topics_include": "; ".join(t for t in sub.topics_include if t.lower() not in known),
        "topics_exclude": "; ".join(t for t in sub.topics_exclude if t.lower() not in known),
        "delivery_hour": "" if sub.delivery_hour is None else str(sub.delivery_hour),
        "timezone": sub.timezone,
        "format": sub.format.value,
    }
    follow = {t.lower() for t in sub.topics_include}
    mute = {t.lower() for t in sub.topics_exclude}
    if form is not None:
        values.update({k: v[0] for k, v in form.items() if k in values and v})
        follow = {t.lower() for t in form.get("follow", [])}
        mute = {t.lower() for t in form.get("mute", [])}
    paused = sub.paused_until if sub.paused_until and sub.paused_until > datetime.now(UTC) else None
    zones = TIMEZONES if sub.timezone in TIMEZONES else [sub.timezone, *TIMEZONES]
    return pages.render(
        "preferences.html",
        status_code=400 if error else 200,
        subscriber=sub,
        values=values,
        labels=labels,
        follow=follow,
        mute=mute,
        paused_until=paused,
        pause_days=PAUSE_DAYS,
        token=token,
        saved=saved,
        error=error,
        timezones=zones,
    )


def _recent_labels(editions: EditionRepository, prefix: str) -> list[str]:
    """The theme labels of the last few editions, most recent first, each once."""
    labels: dict[str, str] = {}
    for edition_id in editions.ids(prefix, limit=RECENT_EDITIONS):
        edition = editions.load(edition_id)
        for theme in edition.themes if edition else []:
            if theme.shown:
                labels.setdefault(theme.label.lower(), theme.label)
    return list(labels.values())[:40]


async def _read_form(request: Request) -> dict[str, list[str]]:
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise HTTPException(411, "the form was sent without a Content-Length")
    if int(length) > MAX_FORM_BYTES:
        raise HTTPException(413, "the form is too large")
    form = await request.form(max_files=0, max_fields=200)
    result: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            result.setdefault(key, []).append(value)
    return result
