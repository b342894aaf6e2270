"""Render: one edition into a subject, an HTML body and a plain-text body.

Templates live in `templates/`; an operator's DIGEST_TEMPLATES_DIR may
replace any single file, the rest fall back to the defaults. Everything
from feeds is autoescaped in HTML.
"""

from __future__ import annotations

import re
import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import css_inline
import jinja2

from digest.config import DEFAULT_TEMPLATES_DIR, Settings
from digest.models import DigestError, Edition, MailFormat, RenderedDigest, Subscriber

TEXT_WIDTH = 72
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")


class TemplateError(DigestError):
    """A template could not be loaded or rendered; names the file and line."""


class Renderer:
    """Holds the Jinja2 environments; build one per run and reuse it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        dirs = [str(DEFAULT_TEMPLATES_DIR)]
        if settings.templates_dir:
            dirs.insert(0, str(settings.templates_dir))
        loader = jinja2.FileSystemLoader(dirs)
        self.html_env = _environment(loader, autoescape=True)
        self.text_env = _environment(loader, autoescape=False)
        self.subject_template = self._compile_subject(settings.subject)
        self._inliner = css_inline.CSSInliner(load_remote_stylesheets=False)

    def render(self, edition: Edition, subscriber: Subscriber) -> RenderedDigest:
        themes = [t for t in edition.themes if t.shown]
        context = {
            "edition": edition,
            "themes": themes,
            "subscriber": subscriber,
            "tz": ZoneInfo(subscriber.timezone or self.settings.timezone),
            "from_name": self.settings.from_name,
            "date": self._edition_date(edition, subscriber),
        }
        subject = self.subject(edition, subscriber)
        text = self._render(self.text_env, "digest.txt", context)
        html = None
        if subscriber.format is MailFormat.html:
            html = self._inliner.inline(self._render(self.html_env, "digest.html", context))
        return RenderedDigest(subject=subject, text=text, html=html)

    def subject(self, edition: Edition, subscriber: Subscriber) -> str:
        """The subject line, never containing a line break whatever the feeds hold."""
        top = [t.label for t in edition.themes if t.shown][:2]
        context = {
            "date": self._edition_date(edition, subscriber),
            "top_themes": " \u00b7 ".join(top) or "a quiet day",
            "themes": top,
            "from_name": self.settings.from_name,
        }
        try:
            raw = self.subject_template.render(context)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"DIGEST_SUBJECT: {exc}") from None
        return " ".join(_LINE_BREAKS.sub(" ", raw).split())[:250]

    def _edition_date(self, edition: Edition, subscriber: Subscriber) -> str:
        tz = ZoneInfo(subscriber.timezone or self.settings.timezone)
        return edition.window_end.astimezone(tz).strftime("%a %-d %b")

    def _compile_subject(self, source: str) -> jinja2.Template:
        try:
            return self.text_env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"DIGEST_SUBJECT: {exc.message} (line {exc.lineno})") from None

    def _render(self, env: jinja2.Environment, name: str, context: dict) -> str:
        try:
            return env.get_template(name).render(context)
        except jinja2.TemplateSyntaxError as exc:
            where = exc.filename or exc.name or name
            raise TemplateError(f"{where}, line {exc.lineno}: {exc.message}") from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"template {exc.name} not found in {env.loader.searchpath}"
            ) from None  # type: ignore[union-attr]
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{name}: {exc}") from None


def _environment(loader: jinja2.BaseLoader, autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader,
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["localtime"] = _localtime
    env.filters["wrap"] = _wrap
    env.filters["underline"] = lambda s, ch="=": f"{s}\n{ch * min(len(s), TEXT_WIDTH)}"
    env.filters["safe_url"] = safe_url
    return env


def _localtime(value: datetime, tz: ZoneInfo, fmt: str = "%H:%M") -> str:
    return value.astimezone(tz).strftime(fmt)


def _wrap(value: str, width: int = TEXT_WIDTH, indent: str = "") -> str:
    return textwrap.fill(
        value,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=True,
        break_on_hyphens=False,
    )


def safe_url(url: str) -> str:
    """Only absolute http(s) links reach the reader; anything else becomes '#'."""
    url = url.strip()
    return url if re.match(r"^https?://[^\s\"'<>]+$", url, re.IGNORECASE) else "#"


def template_dirs(settings: Settings) -> list[Path]:
    return [p for p in (settings.templates_dir, DEFAULT_TEMPLATES_DIR) if p]
