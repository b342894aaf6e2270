"""Previews: the exact message a subscriber would get, written to files or served locally.

`write_preview` writes digest.html, digest.txt and digest.eml (the whole MIME
message, built by the same `build_message` that sending uses). `serve_preview`
shows those files on 127.0.0.1 on a page that switches between the HTML and the
plain-text part, so an operator reviews what will go out, not an approximation.
"""

from __future__ import annotations

import email
import email.policy
import tempfile
from collections.abc import Callable
from functools import partial
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from digest.config import Settings
from digest.deliver import build_message
from digest.models import DigestError, Edition, Subscriber
from digest.render import HTML_BUDGET, Renderer

HTML_FILE, TEXT_FILE, EML_FILE = "digest.html", "digest.txt", "digest.eml"
# Shown on the preview page; the headers that decide how the message is received.
SHOWN_HEADERS = ("Subject", "From", "To", "Date", "List-Unsubscribe")
# The digest must stand alone: in the preview it may load nothing at all.
DIGEST_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def sample_subscriber(settings: Settings) -> Subscriber:
    """The reader a preview is rendered for when no --subscriber is given."""
    return Subscriber(email="reader@example.com", name="Sample Reader", timezone=settings.timezone)


def output_folder(out: Path) -> Path:
    """The preview's folder, made now, or DigestError naming it: a folder that cannot be
    written fails before the feeds are fetched, not after."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".digest-write-check-"):
            pass  # its own name: two previews at once never remove each other's
    except FileExistsError:
        raise _unwritable(out, "it is a file, not a folder") from None
    except OSError as exc:
        raise _unwritable(out, exc.strerror or str(exc)) from None
    return out


def _unwritable(out: Path, why: str) -> DigestError:
    return DigestError(
        f"cannot write the preview to {out}: {why}; "
        "pass --out with a folder you can write to, or set DIGEST_OUTPUT_DIR"
    )


def write_preview(
    edition: Edition, settings: Settings, out: Path, subscriber: Subscriber | None = None
) -> list[Path]:
    """Write digest.html, digest.txt and digest.eml for one subscriber; nothing is sent.

    A stale digest.html from an earlier HTML preview is removed when this
    subscriber reads plain text only, so the directory never mixes two renders.
    """
    subscriber = subscriber or sample_subscriber(settings)
    rendered = Renderer(settings, preview=True).render(edition, subscriber)
    message = build_message(rendered, subscriber, settings)
    paths = [out / TEXT_FILE, out / EML_FILE]
    html = out / HTML_FILE
    try:
        output_folder(out)
        paths[0].write_text(rendered.text, encoding="utf-8")
        paths[1].write_bytes(bytes(message))
        if rendered.html is None:
            html.unlink(missing_ok=True)
        else:
            html.write_text(rendered.html, encoding="utf-8")
            paths.insert(0, html)
    except OSError as exc:  # a disk full, a file removed from under us
        raise _unwritable(out, exc.strerror or str(exc)) from None
    return paths


def serve_preview(out: Path, port: int = 0, ready: Callable[[str], None] = print) -> None:
    """Serve the preview in `out` on 127.0.0.1 until interrupted; `ready` gets the URL.

    Only loopback is bound: the preview carries a subscriber's real links.
    """
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), partial(_PreviewHandler, out))
    except OSError as exc:
        raise DigestError(
            f"cannot serve the preview on 127.0.0.1:{port}: {exc.strerror or exc}; "
            "pick another port with --port (0 picks a free one)"
        ) from None
    ready(f"http://127.0.0.1:{server.server_port}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class _PreviewHandler(BaseHTTPRequestHandler):
    """The switcher page at / and the three preview files, read fresh on each request."""

    def __init__(self, out: Path, *args, **kwargs) -> None:
        self.out = out
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if not (self.out / EML_FILE).is_file():
            self._send(404, "text/plain; charset=utf-8", b"no preview here; run digest preview\n")
        elif url.path == "/":
            view = parse_qs(url.query).get("view", ["html"])[0]
            self._send(200, "text/html; charset=utf-8", self._page(view).encode())
        elif url.path == f"/{HTML_FILE}" and (self.out / HTML_FILE).is_file():
            body = (self.out / HTML_FILE).read_bytes()
            self._send(
                200, "text/html; charset=utf-8", body, {"Content-Security-Policy": DIGEST_CSP}
            )
        elif url.path in (f"/{TEXT_FILE}", f"/{EML_FILE}"):
            body = (self.out / url.path.lstrip("/")).read_bytes()
            self._send(200, "text/plain; charset=utf-8", body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def log_message(self, format: str, *args: object) -> None:
        pass  # the operator is looking at the page, not the request log

    def _send(self, status: int, content_type: str, body: bytes, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _page(self, view: str) -> str:
        message = email.message_from_bytes(
            (self.out / EML_FILE).read_bytes(), policy=email.policy.default
        )
        has_html = (self.out / HTML_FILE).is_file()
        if view != "text" and not has_html:
            view = "text"
        headers = "".join(
            f"<tr><th>{name}</th><td>{escape(str(message[name]))}</td></tr>"
            for name in SHOWN_HEADERS
            if message[name] is not None
        )
        size = ""
        if has_html:
            used = (self.out / HTML_FILE).stat().st_size
            size = f"HTML {used / 1000:.1f} KB (kept under {HTML_BUDGET // 1000} KB: Gmail clips)"

        def tab(name: str, label: str, enabled: bool = True) -> str:
            if not enabled:
                return f'<span class="off">{label} (text-only subscriber)</span>'
            current = ' aria-current="page"' if name == view else ""
            return f'<a href="/?view={name}"{current}>{label}</a>'

        source = HTML_FILE if view == "html" else TEXT_FILE
        title = "HTML part" if view == "html" else "plain-text part"
        return _PAGE.format(
            subject=escape(str(message["Subject"])),
            headers=headers,
            tabs=tab("html", "HTML", has_html) + tab("text", "Plain text"),
            eml=EML_FILE,
            size=escape(size),
            source=source,
            title=title,
        )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Preview: {subject}</title>
<style>
  html, body {{ height: 100%; margin: 0; }}
  body {{ display: flex; flex-direction: column; background: #e4e4df;
         font: 14px/1.4 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, sans-serif; }}
  header {{ padding: 8px 12px; background: #fafaf7; border-bottom: 1px solid #c9c9c2; }}
  table {{ border-collapse: collapse; }}
  th {{ text-align: right; padding: 1px 8px 1px 0; color: #5c5c57; font-weight: normal;
        vertical-align: top; white-space: nowrap; }}
  td {{ padding: 1px 0; overflow-wrap: anywhere; }}
  nav {{ display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; margin-top: 6px; }}
  nav a {{ color: #0b57a4; }}
  nav a[aria-current] {{ color: #1f1f1f; font-weight: bold; text-decoration: none; }}
  .off, .size {{ color: #5c5c57; }}
  iframe {{ flex: 1; width: 100%; border: 0; background: #fff; }}
</style>
</head>
<body>
<header>
  <table>{headers}</table>
  <nav>{tabs}<a href="/{eml}">Raw message (.eml)</a><span class="size">{size}</span></nav>
</header>
<iframe title="The digest, {title}" src="/{source}" sandbox></iframe>
</body>
</html>
"""
