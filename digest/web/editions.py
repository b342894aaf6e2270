"""The editions on the web: each in full at a stable URL, an archive, and an Atom feed.

An email shows the day's top themes; its "+N more" and "All N headlines"
links lead here, where every theme and every headline of the stored edition
is shown in the email's own layout. With DIGEST_ARCHIVE=off none of this is
served (and messages do not link to it). Editions never change once stored,
so pages may be cached.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import OrderedDict
from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.config import Settings
from digest.db.editions import EditionRepository
from digest.links import ARCHIVE_PATH, FEED_PATH, edition_path
from digest.models import Edition, counted
from digest.render import ThemeView, headline_count

ARCHIVE_SIZE = 60  # editions listed on the archive page
FEED_SIZE = 20  # entries in /feed.xml
CACHE_SIZE = 64  # parsed editions kept in memory
PUBLIC_CACHE = "public, max-age=300"
ATOM = "http://www.w3.org/2005/Atom"
_SLUG = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class _Editions:
    """Stored editions of this list, parsed once and kept (they never change)."""

    def __init__(self, store: EditionRepository, list_id: str) -> None:
        self.store = store
        self.prefix = f"{list_id}/"
        self._cache: OrderedDict[str, Edition] = OrderedDict()

    def get(self, edition_id: str) -> Edition | None:
        if edition_id in self._cache:
            self._cache.move_to_end(edition_id)
            return self._cache[edition_id]
        edition = self.store.load(edition_id)
        if edition is not None:
            self._cache[edition_id] = edition
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return edition

    def latest(self, limit: int) -> list[Edition]:
        """Newest first."""
        ids = self.store.ids(self.prefix, limit=limit)
        return [e for e in map(self.get, ids) if e is not None]


def routes(settings: Settings, store: EditionRepository, pages) -> list[Route]:
    """The public pages; with DIGEST_ARCHIVE=off only a plain home page."""
    editions = _Editions(store, settings.list_id)
    tz = ZoneInfo(settings.timezone)
    base = settings.links_url

    def summary(edition: Edition) -> dict:
        return {
            "url": edition_path(edition.id).lstrip("/"),
            "date": _long_date(edition.window_end.astimezone(tz)),
            "headlines": headline_count(edition),
            "themes": [t.label for t in edition.themes[:3]],
        }

    async def home(request: Request) -> Response:
        if settings.archive != "public":
            return pages.render("home.html")
        return await archive(request)

    async def archive(request: Request) -> Response:
        latest = await run_in_threadpool(editions.latest, ARCHIVE_SIZE)
        response = pages.render("archive.html", editions=[summary(e) for e in latest])
        response.headers["Cache-Control"] = PUBLIC_CACHE
        return response

    async def edition_page(request: Request) -> Response:
        slug = request.path_params["slug"]
        edition = None
        if _SLUG.match(slug):
            edition = await run_in_threadpool(editions.get, editions.prefix + slug)
        if edition is None:
            raise HTTPException(404, "there is no edition for that date")
        local = edition.window_end.astimezone(tz)
        themes = [ThemeView.full(t) for t in edition.themes]
        response = pages.render(
            "edition.html",
            edition=edition,
            themes=themes,
            tz=tz,
            timezone=tz.key,
            local_day=local.date(),
            date=_long_date(local),
            article_count=sum(1 + len(t.more) for t in themes),
            from_name=settings.from_name,
            edition_url=None,
            archive_url=f"{base}{ARCHIVE_PATH}",
            feed_url=f"{base}{FEED_PATH}",
        )
        response.headers["Cache-Control"] = PUBLIC_CACHE
        return response

    async def feed(request: Request) -> Response:
        latest = await run_in_threadpool(editions.latest, FEED_SIZE)
        body = _atom(settings, latest, tz)
        return Response(
            body,
            media_type="application/atom+xml; charset=utf-8",
            headers={"Cache-Control": PUBLIC_CACHE},
        )

    if settings.archive != "public":
        return [Route("/", home, methods=["GET"])]
    return [
        Route("/", home, methods=["GET"]),
        Route(ARCHIVE_PATH, archive, methods=["GET"]),
        Route(ARCHIVE_PATH + "/{slug}", edition_page, methods=["GET"]),
        Route(FEED_PATH, feed, methods=["GET"]),
    ]


def _long_date(moment: datetime) -> str:
    return f"{moment:%A} {moment.day} {moment:%B %Y}"


def _atom(settings: Settings, editions: list[Edition], tz: ZoneInfo) -> bytes:
    """An Atom feed with one entry per edition, linking to its page."""
    base = settings.links_url
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        element.text = text
        return element

    root = ET.Element(f"{{{ATOM}}}feed")
    sub(root, "title", settings.from_name)
    sub(root, "id", f"{base}{FEED_PATH}")
    sub(root, "link", href=f"{base}{FEED_PATH}", rel="self", type="application/atom+xml")
    sub(root, "link", href=f"{base}{ARCHIVE_PATH}", rel="alternate", type="text/html")
    updated = max((e.generated_at for e in editions), default=None)
    sub(root, "updated", (updated or datetime(2000, 1, 1, tzinfo=tz)).isoformat())
    author = sub(root, "author")
    sub(author, "name", settings.from_name)
    for edition in editions:
        url = f"{base}{edition_path(edition.id)}"
        entry = sub(root, "entry")
        labels = [t.label for t in edition.themes[:3]]
        day = _long_date(edition.window_end.astimezone(tz))
        sub(entry, "title", f"{day}: {' · '.join(labels)}" if labels else day)
        sub(entry, "id", url)
        sub(entry, "link", href=url, rel="alternate", type="text/html")
        sub(entry, "updated", edition.generated_at.isoformat())
        sub(entry, "summary", _entry_summary(edition), type="text")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _entry_summary(edition: Edition) -> str:
    """The edition's themes and their leads, as plain text."""
    headlines = counted(headline_count(edition), "headline")
    lines = [f"{headlines} in {counted(len(edition.themes), 'theme')}."]
    lines += [f"{t.label}: {t.lead.title}" for t in edition.themes[:10]]
    return "\n".join(lines)
