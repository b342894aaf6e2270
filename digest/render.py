"""Render: one edition into a subject, an HTML body and a plain-text body.

Templates live in `templates/` as a base layout with partials; an operator's
DIGEST_TEMPLATES_DIR may replace any single file and the rest fall back to the
defaults. Everything from feeds is autoescaped in HTML, and only absolute
http(s) links are ever written. The HTML is kept under Gmail's clipping limit
by leaving out whole headlines, never by cutting the markup.
"""

from __future__ import annotations

import logging
import re
import textwrap
import traceback
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import css_inline
import jinja2

from digest.config import Settings
from digest.errors import TemplateError
from digest.links import PREFERENCES_PAGE, UNSUBSCRIBE_PAGE, anchor, edition_url, subscriber_link
from digest.models import (
    Article,
    Edition,
    MailFormat,
    RenderedDigest,
    Subscriber,
    Theme,
    counted,
)

log = logging.getLogger(__name__)

TEXT_WIDTH = 72
# Gmail clips messages whose HTML passes 102 KB; stay clear of it.
HTML_BUDGET = 100_000
SUBJECT_LENGTH = 200
TOPICS_NOTE_LENGTH = 160  # the note on what narrows a reader's copy: a line, not a list
# Line breaks and every other control character: none may reach a header or a text line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SAFE_URL = re.compile(r"^https?://[^\s\"'<>\\]+$", re.IGNORECASE)
_PLACEHOLDER_TOKEN = "PREVIEW-PLACEHOLDER-set-DIGEST_SECRET_KEY"


@dataclass(frozen=True)
class ThemeView:
    """What a template sees of a theme: the lead, the others, and how many were left out.

    `catch_all` marks the last section, articles related to no other: it is
    shown as a plain list (partials/also_today.*), with no lead.
    """

    label: str
    lead: Article
    more: list[Article]
    omitted: int = 0
    catch_all: bool = False

    @classmethod
    def of(cls, theme: Theme) -> ThemeView:
        """The theme as the caps left it; `omitted` counts the headlines they hid."""
        hidden = sum(1 for a in theme.articles[1:] if not a.shown and a.duplicate_of is None)
        return cls(theme.label, theme.lead, theme.more, hidden, theme.catch_all)

    @classmethod
    def full(cls, theme: Theme) -> ThemeView:
        """Every headline of the theme, whatever the caps (the web edition)."""
        reports = [a for a in theme.articles[1:] if a.duplicate_of is None]
        return cls(theme.label, theme.lead, reports, catch_all=theme.catch_all)

    def capped(self, limit: int) -> ThemeView:
        kept = self.more[:limit]
        omitted = self.omitted + len(self.more) - len(kept)
        return ThemeView(self.label, self.lead, kept, omitted, self.catch_all)


def headline_count(edition: Edition) -> int:
    """Every headline of the edition, hidden by a cap or not; folded copies not counted."""
    return sum(1 for t in edition.themes for a in t.articles if a.duplicate_of is None)


class Renderer:
    """Holds the Jinja2 environments; build one per run and reuse it for every subscriber.

    `preview=True` is for previews and dry runs: a missing signing key or postal
    address shows as a clearly marked placeholder instead of stopping the run.
    """

    def __init__(self, settings: Settings, *, preview: bool = False) -> None:
        self.settings = settings
        self.preview = preview
        self._secret = settings.secret_key.get_secret_value()
        if not preview:
            settings.require_secret_key()
        self.postal_address = " ".join(settings.postal_address.split())
        if not self.postal_address and not preview:
            log.warning("DIGEST_POSTAL_ADDRESS is not set: the footer has no postal address")
        loader = jinja2.FileSystemLoader([str(d) for d in settings.template_dirs])
        self.html_env = _environment(loader, autoescape=True)
        self.text_env = _environment(loader, autoescape=False)
        self.subject_template = self._compile_subject(settings.subject)
        self._subject("Thu 19 Mar", ["A theme", "Another"])  # a wrong name fails now, not mid-run
        self._inliner = css_inline.CSSInliner(
            keep_at_rules=True, load_remote_stylesheets=False, minify_css=True
        )
        self._plans: dict[tuple, tuple[int | None, int]] = {}

    def render(self, edition: Edition, subscriber: Subscriber) -> RenderedDigest:
        themes = [ThemeView.of(t) for t in edition.themes if t.shown]
        context = self._context(edition, subscriber, themes)
        subject = self.subject(edition, subscriber)
        text = self._render(
            self.text_env, "digest.txt", {**context, "themes": themes, "omitted": 0}
        )
        html = None
        if subscriber.format is MailFormat.html:
            html = self._html_within_budget(context, themes)
        return RenderedDigest(subject=subject, text=text, html=html)

    def subject(self, edition: Edition, subscriber: Subscriber) -> str:
        """The subject line: one line, whatever the feeds hold."""
        top = [t.label for t in edition.themes if t.shown and not t.catch_all][:2]
        return self._subject(self._edition_date(edition, subscriber), top)

    def _subject(self, date: str, top: list[str]) -> str:
        context = {
            "date": date,
            "top_themes": " \u00b7 ".join(top) or "a quiet day",
            "themes": top,
            "from_name": self.settings.from_name,
        }
        try:
            raw = self.subject_template.render(context)
        except jinja2.TemplateError as exc:
            raise TemplateError(
                f"DIGEST_SUBJECT: {exc}; it may use {', '.join(sorted(context))}"
            ) from None
        return _one_line(raw, SUBJECT_LENGTH)

    def unsubscribe_url(self, subscriber: Subscriber) -> str:
        """The subscriber's signed link, or in a preview without a key a marked placeholder."""
        return self._link(subscriber, UNSUBSCRIBE_PAGE)

    def _link(self, subscriber: Subscriber, page: str) -> str:
        if self._secret:
            return subscriber_link(self.settings, self._secret, subscriber.public_id, page)
        return f"{self.settings.links_url}/{page}?token={_PLACEHOLDER_TOKEN}"

    def _context(self, edition: Edition, subscriber: Subscriber, themes: list[ThemeView]) -> dict:
        """Everything the templates see except `themes` and `omitted`, which trimming varies."""
        tz = self._zone(subscriber)
        leads = [t.lead.title for t in themes[:3]]
        return {
            "edition": edition,
            "subscriber": subscriber,
            "tz": tz,
            "timezone": tz.key,
            "local_day": edition.window_end.astimezone(tz).date(),
            "date": self._edition_date(edition, subscriber),
            "article_count": sum(1 + len(t.more) for t in themes),
            # A subscriber's topics narrow the edition they are shown: its count would not be
            # the web page's, so their link names no number.
            "headline_total": None if _personal(subscriber) else headline_count(edition),
            "topics_note": _topics_note(subscriber),
            "edition_url": edition_url(self.settings, edition.id),
            # Themes past DIGEST_MAX_THEMES: the glance list says how many more the day has.
            "hidden_themes": sum(not t.shown for t in edition.themes),
            "preheader": _one_line(" \u00b7 ".join(leads), 250),
            "from_name": self.settings.from_name,
            "from_address": self.settings.from_address,
            "postal_address": self.postal_address,
            "unsubscribe_url": self.unsubscribe_url(subscriber),
            "preferences_url": self._link(subscriber, PREFERENCES_PAGE),
            "placeholders": {
                "unsubscribe": not self._secret,
                "postal_address": self.preview and not self.postal_address,
            },
        }

    def _html_within_budget(self, context: dict, themes: list[ThemeView]) -> str:
        """The inlined HTML, leaving out the fewest whole headlines needed to fit HTML_BUDGET.

        First the "more" lists are capped (the largest cap that fits), then trailing
        themes are dropped; the reader is told how many headlines were left out. The
        plan is remembered per set of themes, so every reader of an edition gets the
        same headlines and the search runs once, not once per subscriber.
        """

        def build(cap: int | None, count: int) -> str:
            shown, dropped = _trim(themes, cap, count)
            omitted = sum(t.omitted for t in shown) + dropped
            body = self._render(
                self.html_env, "digest.html", {**context, "themes": shown, "omitted": omitted}
            )
            return self._inliner.inline(body)

        key = tuple((t.label, t.lead.key, len(t.more)) for t in themes)
        if key in self._plans:
            html = build(*self._plans[key])
            if _fits(html):
                return html
        plan = _plan(build, themes)
        if len(self._plans) >= 64:
            self._plans.clear()
        self._plans[key] = plan
        html = build(*plan)
        if not _fits(html):
            log.warning("digest HTML is %d bytes even with one theme", len(html.encode()))
        return html

    def _zone(self, subscriber: Subscriber) -> ZoneInfo:
        return ZoneInfo(subscriber.timezone or self.settings.timezone)

    def _edition_date(self, edition: Edition, subscriber: Subscriber) -> str:
        day = edition.window_end.astimezone(self._zone(subscriber))
        return f"{day:%a} {day.day} {day:%b}"

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
            dirs = ", ".join(str(d) for d in self.settings.template_dirs)
            raise TemplateError(
                f"{_where(exc, name)}: template {exc.name} not found in {dirs}"
            ) from None
        except (jinja2.TemplateError, TypeError, ValueError, AttributeError) as exc:
            raise TemplateError(f"{_where(exc, name)}: {exc}") from None


def _personal(subscriber: Subscriber) -> bool:
    return bool(subscriber.topics_include or subscriber.topics_exclude)


def _topics_note(subscriber: Subscriber) -> str | None:
    """What narrows this reader's copy ("only headlines about rail; 1 topic muted"), so a
    short digest is not taken for a quiet day; None without topics. Muted topics are
    counted, not named: a reader may mute a word they would rather not read each morning."""
    parts = []
    if subscriber.topics_include:
        parts.append("only headlines about " + "; ".join(subscriber.topics_include))
    if subscriber.topics_exclude:
        parts.append(f"{counted(len(subscriber.topics_exclude), 'topic')} muted")
    return _one_line(", ".join(parts), TOPICS_NOTE_LENGTH) if parts else None


def safe_url(url: str) -> str:
    """The URL if it is absolute http(s), else '' so templates show the title unlinked."""
    url = url.strip()
    return url if _SAFE_URL.match(url) else ""


def html_environment(settings: Settings) -> jinja2.Environment:
    """The digest's HTML templates and filters, for pages that share its look (web edition)."""
    return _environment(jinja2.FileSystemLoader([str(d) for d in settings.template_dirs]), True)


def _environment(loader: jinja2.BaseLoader, autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader,
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["when"] = _when
    env.filters["wrap"] = _wrap
    env.filters["counted"] = counted
    env.filters["heading"] = _heading
    env.filters["safe_url"] = safe_url
    env.filters["anchor"] = anchor
    return env


@jinja2.pass_context
def _when(context: jinja2.runtime.Context, article: Article) -> str:
    """The article's time in the reader's zone; the weekday too when it is not the edition's day.

    An undated article shows when it was first seen, and says so.
    """
    local = article.published.astimezone(context["tz"])
    text = f"{local:%H:%M}" if local.date() == context["local_day"] else f"{local:%a %H:%M}"
    return text if article.dated else f"first seen {text}"


def _wrap(value: str, width: int = TEXT_WIDTH, hang: str = "") -> str:
    """Fill a paragraph to `width` columns; control characters become spaces."""
    return textwrap.fill(
        _CONTROL.sub(" ", value),
        width=width,
        subsequent_indent=hang,
        break_long_words=True,
        break_on_hyphens=False,
    )


def _heading(value: str, char: str = "=") -> str:
    """A wrapped heading underlined to the length of its longest line."""
    text = _wrap(value)
    return f"{text}\n{char * max(len(line) for line in text.splitlines() or [''])}"


def _one_line(value: str, limit: int) -> str:
    """Collapse to one line of single spaces, shortened at a word with an ellipsis."""
    text = " ".join(_CONTROL.sub(" ", value).split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ·,;:") + "…"


def _plan(build, themes: list[ThemeView]) -> tuple[int | None, int]:
    """(cap on "more" items or None, number of themes kept): the least trimming that fits."""
    count = len(themes)
    if not themes or _fits(build(None, count)):
        return None, count
    longest = max(len(t.more) for t in themes)
    cap = _largest(0, longest - 1, lambda c: _fits(build(c, count)))
    if cap is not None:
        return cap, count
    return 0, _largest(1, count - 1, lambda k: _fits(build(0, k))) or 1


def _trim(themes: list[ThemeView], cap: int | None, count: int) -> tuple[list[ThemeView], int]:
    """The first `count` themes with at most `cap` more items each, and how many were dropped."""
    capped = themes if cap is None else [t.capped(cap) for t in themes]
    dropped = sum(1 + len(t.more) + t.omitted for t in capped[count:])
    return capped[:count], dropped


def _fits(html: str) -> bool:
    return len(html.encode("utf-8")) <= HTML_BUDGET


def _largest(low: int, high: int, ok) -> int | None:
    """The largest n in [low, high] with ok(n), given ok is monotonic (true, then false)."""
    best = None
    while low <= high:
        mid = (low + high) // 2
        if ok(mid):
            best, low = mid, mid + 1
        else:
            high = mid - 1
    return best


def _where(exc: BaseException, name: str) -> str:
    """'file, line N' for the innermost template frame of a rendering error."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith((".html", ".txt")):
            return f"{frame.filename}, line {frame.lineno}"
    return name
