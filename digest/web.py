"""`digest serve`: the small web app every message links to.

Subscribers have no accounts: the signed token in their link (digest.tokens)
is the whole proof of who they are. Three things live here:

- `GET /unsubscribe?token=…` a confirmation page with one button;
- `POST /unsubscribe?token=…` RFC 8058 one-click unsubscribe, as sent by
  Gmail's and Yahoo's button with the body `List-Unsubscribe=One-Click`
  (the page's own button posts the same), done with no further step;
- `GET|POST /preferences?token=…` topics, delivery hour, time zone and format.

A forged, altered or truncated token gets a 400 page and changes nothing.
Tokens are never logged: the server's access log is off and our own log
lines name only the address.
"""

from __future__ import annotations

import logging
import socket
from urllib.parse import urlencode
from zoneinfo import available_timezones

import jinja2
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from digest import subscribers as records
from digest.config import Settings
from digest.db.subscribers import SubscriberRepository
from digest.models import DigestError, Subscriber, SubscriberStatus
from digest.tokens import BadToken, read_token

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024
# Pages hold a signed token in their URL: keep it out of Referer headers and
# caches, and let the pages do nothing but show themselves and post to us.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
TIMEZONES = sorted(available_timezones())
TOPICS_SEPARATORS = ";,\n"


class _Pages:
    """The web templates (templates/web/), overridable like the digest's own."""

    def __init__(self, settings: Settings) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(settings.template_dirs),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.site_name = settings.from_name

    def render(self, name: str, status_code: int = 200, **context: object) -> HTMLResponse:
        html = self.env.get_template(f"web/{name}").render(site_name=self.site_name, **context)
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def create_app(settings: Settings, store: SubscriberRepository) -> Starlette:
    """The ASGI app; refuses to exist without DIGEST_SECRET_KEY, since no link could be trusted."""
    secret = settings.require_secret_key()
    pages = _Pages(settings)

    def subscriber_email(request: Request) -> str:
        return read_token(secret, request.query_params.get("token", ""))

    async def home(request: Request) -> Response:
        return pages.render("home.html")

    async def unsubscribe_page(request: Request) -> Response:
        email = subscriber_email(request)
        sub = await run_in_threadpool(store.get, email)
        token = request.query_params["token"]
        return pages.render("unsubscribe.html", email=email, subscriber=sub, token=token)

    async def unsubscribe(request: Request) -> Response:
        # RFC 8058: the signed URL is the whole authorisation; the body
        # (List-Unsubscribe=One-Click) only says a button was pressed, so it
        # is not required: a POST is never sent by link scanners.
        email = subscriber_email(request)
        before = await run_in_threadpool(store.get, email)
        sub = await run_in_threadpool(store.set_status, email, SubscriberStatus.unsubscribed)
        if before is not None and before.status is not SubscriberStatus.unsubscribed:
            log.info("%s unsubscribed (was %s)", email, before.status.value)
        return pages.render("unsubscribed.html", email=email, subscriber=sub)

    async def preferences_page(request: Request) -> Response:
        email = subscriber_email(request)
        sub = await run_in_threadpool(store.get, email)
        if sub is None:
            return pages.render("unknown.html", status_code=404, email=email)
        saved = request.query_params.get("saved") == "1"
        return _preferences(pages, sub, token=request.query_params["token"], saved=saved)

    async def save_preferences(request: Request) -> Response:
        email = subscriber_email(request)
        token = request.query_params["token"]
        sub = await run_in_threadpool(store.get, email)
        if sub is None:
            return pages.render("unknown.html", status_code=404, email=email)
        form = await _read_form(request)
        try:
            changed = sub.model_copy(
                update={
                    "topics_include": records.parse_topics(
                        form.get("topics_include", ""), TOPICS_SEPARATORS
                    ),
                    "topics_exclude": records.parse_topics(
                        form.get("topics_exclude", ""), TOPICS_SEPARATORS
                    ),
                    "delivery_hour": records.parse_delivery_hour(form.get("delivery_hour", "")),
                    "timezone": records.parse_timezone(form.get("timezone", ""), sub.timezone),
                    "format": records.parse_format(form.get("format", "")),
                }
            )
        except records.InvalidField as exc:
            return _preferences(pages, sub, token=token, error=str(exc), form=form)
        await run_in_threadpool(store.update, changed)
        log.info("%s changed their preferences", email)
        # Post/redirect/get, so reloading the page does not post again. Relative, so it
        # stays under DIGEST_PUBLIC_URL whatever path the proxy serves us at.
        query = urlencode({"token": token, "saved": "1"})
        return RedirectResponse(f"preferences?{query}", status_code=303, headers=SECURITY_HEADERS)

    async def healthz(request: Request) -> Response:
        """For container health checks: the app answers and its database is reachable."""
        await run_in_threadpool(store.ping)
        return PlainTextResponse("ok\n")

    async def bad_token(request: Request, exc: Exception) -> Response:
        return pages.render("bad_link.html", status_code=400, reason=str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return pages.render("error.html", status_code=exc.status_code, reason=exc.detail)

    routes = [
        Route("/", home, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/unsubscribe", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe", unsubscribe, methods=["POST"]),
        Route("/preferences", preferences_page, methods=["GET"]),
        Route("/preferences", save_preferences, methods=["POST"]),
    ]
    return Starlette(
        routes=routes, exception_handlers={BadToken: bad_token, HTTPException: http_error}
    )


def _preferences(
    pages: _Pages,
    sub: Subscriber,
    *,
    token: str,
    saved: bool = False,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    """The preferences form, filled from the stored record or from a refused post."""
    values = {
        "topics_include": "; ".join(sub.topics_include),
        "topics_exclude": "; ".join(sub.topics_exclude),
        "delivery_hour": "" if sub.delivery_hour is None else str(sub.delivery_hour),
        "timezone": sub.timezone,
        "format": sub.format.value,
    }
    values.update({k: v for k, v in (form or {}).items() if k in values})
    return pages.render(
        "preferences.html",
        status_code=400 if error else 200,
        subscriber=sub,
        values=values,
        token=token,
        saved=saved,
        error=error,
        timezones=TIMEZONES,
    )


async def _read_form(request: Request) -> dict[str, str]:
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise HTTPException(411, "the form was sent without a Content-Length")
    if int(length) > MAX_FORM_BYTES:
        raise HTTPException(413, "the form is too large")
    form = await request.form(max_files=0, max_fields=20)
    return {k: v for k, v in form.items() if isinstance(v, str)}


def serve(settings: Settings, store: SubscriberRepository, host: str, port: int) -> None:
    """Listen on host:port until interrupted; a busy port is a clear error, not a traceback."""
    app = create_app(settings, store)
    sock = _listen(host, port)
    config = uvicorn.Config(
        app,
        log_config=None,  # keep digest's own log format
        access_log=False,  # request lines would carry subscribers' tokens
        server_header=False,
        proxy_headers=True,
    )
    log.info("serving on http://%s:%d for %s", host, port, settings.public_url)
    uvicorn.Server(config).run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        raise DigestError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "pick another with --host/--port or DIGEST_SERVE_HOST/DIGEST_SERVE_PORT"
        ) from None
    return sock
