"""`digest serve`: the app, the headers every answer carries, and the listening socket.

The pages themselves live beside this module: the editions on the web
(editions.py) and a subscriber's own pages (account.py).

No redirect is ever built from the request's Host header: absolute URLs use
DIGEST_PUBLIC_URL's origin (or the serve address when it is unset), so a
forged Host cannot send a subscriber, token and all, to another site. Pages
reached with a token are never cached and send no Referer.
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.config import Settings
from digest.db.editions import EditionRepository
from digest.db.subscribers import SubscriberRepository
from digest.errors import BadToken, DigestError
from digest.render import html_environment
from digest.web import account
from digest.web import editions as edition_pages

log = logging.getLogger(__name__)

# On every answer: pages load nothing from elsewhere, run no script, are never framed.
BASE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
# Unless a page says it may be cached (the public editions), nothing is: most carry a token.
NO_STORE = "no-store"


class Pages:
    """The web templates (templates/web/), overridable like the digest's own; the edition
    page shares the digest's layout and filters, so it looks like the email."""

    def __init__(self, settings: Settings) -> None:
        self.env = html_environment(settings)
        self.site_name = settings.from_name

    def render(self, name: str, status_code: int = 200, **context: object) -> HTMLResponse:
        html = self.env.get_template(f"web/{name}").render(site_name=self.site_name, **context)
        return HTMLResponse(html, status_code=status_code)


class _Headers:
    """ASGI middleware adding BASE_HEADERS, and Cache-Control: no-store by default."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in BASE_HEADERS.items():
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = NO_STORE
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    settings: Settings, subscribers: SubscriberRepository, editions: EditionRepository
) -> Starlette:
    """The ASGI app; refuses to exist without DIGEST_SECRET_KEY, since no link could be trusted.

    It takes only the repositories it reads: subscribers for their pages, editions for
    the web edition (and the theme labels the preferences page offers)."""
    secret = settings.require_secret_key()
    pages = Pages(settings)
    origin = settings.links_url

    async def healthz(request: Request) -> Response:
        """For container health checks: the app answers and its database is reachable."""
        await run_in_threadpool(subscribers.ping)
        return PlainTextResponse("ok\n")

    async def without_slash(request: Request) -> Response:
        # Starlette's own slash redirect builds its target from the Host header.
        query = f"?{request.url.query}" if request.url.query else ""
        target = f"{origin}/{request.path_params['rest']}{query}"
        return RedirectResponse(target, status_code=307)

    async def bad_token(request: Request, exc: Exception) -> Response:
        return pages.render("bad_link.html", status_code=400, reason=str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return pages.render("error.html", status_code=exc.status_code, reason=exc.detail)

    routes = [
        *edition_pages.routes(settings, editions, pages),
        *account.routes(settings, subscribers, editions, pages, secret),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/{rest:path}/", without_slash),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={BadToken: bad_token, HTTPException: http_error},
        middleware=[Middleware(_Headers)],
    )
    app.router.redirect_slashes = False  # see without_slash
    return app


def serve(
    settings: Settings,
    subscribers: SubscriberRepository,
    editions: EditionRepository,
    host: str,
    port: int,
) -> None:
    """Listen on host:port until interrupted; a busy port is a clear error, not a traceback."""
    app = create_app(settings, subscribers, editions)
    sock = _listen(host, port)
    config = uvicorn.Config(
        app,
        log_config=None,  # keep digest's own log format
        access_log=False,  # request lines would carry subscribers' tokens
        server_header=False,
        proxy_headers=True,
    )
    log.info("serving on http://%s:%d for %s", host, port, settings.links_url)
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
