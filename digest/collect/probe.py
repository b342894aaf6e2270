"""Check one feed before it is listed: fetch it once and say what is there.

`digest feeds add` and OPML import use this so that a typo, a 404 or a dead
server is refused on the spot instead of showing up in the next morning's log.
A probe never touches feed health: only real runs count toward "dead".
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from digest.collect.fetch import Fetcher, FetchError, is_http
from digest.collect.parse import FeedParseError, parse_feed
from digest.config import Settings

# A probe answers while the operator waits: one attempt, and not the run's long budget.
PROBE_TOTAL_TIMEOUT = 30.0
_SCHEMES = ("http", "https", "file")


class Problem(StrEnum):
    """Why a feed cannot be read, each with its own advice."""

    bad_scheme = "bad scheme"
    not_found = "not found"
    refused = "refused"
    timed_out = "timed out"
    not_a_feed = "not a feed"
    failed = "failed"


_ADVICE = {
    Problem.bad_scheme: "use an http:// or https:// URL, or a file path",
    Problem.not_found: "check the address; the feed may have moved",
    Problem.refused: "check the host and port, and that the server is running",
    Problem.timed_out: "the server is slow or unreachable; try again later",
    Problem.not_a_feed: "point it at the RSS, Atom or JSON feed, not the web page",
    Problem.failed: "check the address",
}


@dataclass(frozen=True, slots=True)
class FeedProbe:
    """What one fetch of a feed found: its title, entries and newest date, or the problem."""

    url: str
    problem: Problem | None = None
    detail: str = ""
    title: str = ""
    entries: int = 0
    newest: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        """One line for the operator: what was found, or what is wrong and what to do."""
        if self.problem is not None:
            detail = self.detail.removeprefix(f"{self.problem}: ")  # the parser says it too
            return f"{self.problem}: {detail} ({_ADVICE[self.problem]})"
        newest = f", newest {self.newest:%Y-%m-%d %H:%M} UTC" if self.newest else ""
        title = repr(self.title) if self.title else "untitled"
        entries = f"{self.entries} entr{'y' if self.entries == 1 else 'ies'}"
        return f"{title}, {entries}{newest}"


def probe_feed(source: str, settings: Settings) -> FeedProbe:
    """Fetch and parse `source` once; never raises for a feed that cannot be read."""
    return probe_feeds([source], settings)[0]


def probe_feeds(sources: list[str], settings: Settings) -> list[FeedProbe]:
    """Probe several feeds at once (OPML import), in the order given."""
    quick = settings.model_copy(
        update={
            "fetch_retries": 0,
            "fetch_total_timeout": min(settings.fetch_total_timeout, PROBE_TOTAL_TIMEOUT),
        }
    )
    return asyncio.run(_probe_all(sources, quick))


async def _probe_all(sources: list[str], settings: Settings) -> list[FeedProbe]:
    gate = asyncio.Semaphore(settings.fetch_concurrency)
    async with Fetcher(settings) as fetcher:

        async def one(source: str) -> FeedProbe:
            async with gate:
                return await _probe(fetcher, source, settings)

        return list(await asyncio.gather(*(one(s) for s in sources)))


async def _probe(fetcher: Fetcher, source: str, settings: Settings) -> FeedProbe:
    early = address_problem(source)
    if early is not None:
        return early
    try:
        fetched = await fetcher.fetch(source)
    except FetchError as exc:
        problem = _fetch_problem(str(exc))
        if problem is Problem.failed and "connection failed" in str(exc):
            diagnosis = await _diagnose_connection(source, settings.fetch_timeout)
            if diagnosis is not None:
                return diagnosis
        return FeedProbe(source, problem, str(exc))
    if fetched.content is None:  # a 304 to an unconditional request
        return FeedProbe(source, Problem.failed, "the server answered 304 Not Modified")
    try:
        parsed = parse_feed(
            fetched.content, fetched.url, settings.summary_length, fetched.content_type
        )
    except FeedParseError as exc:
        return FeedProbe(source, Problem.not_a_feed, str(exc))
    dates = [e.published for e in parsed.entries if e.published is not None]
    return FeedProbe(
        source,
        title=parsed.title,
        entries=len(parsed.entries),
        newest=max(dates) if dates else None,
    )


def address_problem(source: str) -> FeedProbe | None:
    """What is wrong with the address itself, before any request (`bad_scheme`: no
    fetch could ever read it), or a local file that is not there."""
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    if len(scheme) > 1 and scheme not in _SCHEMES:  # one letter is a Windows drive
        return FeedProbe(source, Problem.bad_scheme, f"{scheme}:// is not a feed address")
    if is_http(source):
        if not parts.hostname:
            return FeedProbe(source, Problem.bad_scheme, "the URL names no host")
        return None
    path = Path(parts.path if scheme == "file" else source).expanduser()
    if not path.is_file():
        what = "a directory" if path.is_dir() else "no file"
        return FeedProbe(source, Problem.not_found, f"{what} at {path}")
    return None


async def _diagnose_connection(source: str, timeout: float) -> FeedProbe | None:
    """Why a connection failed, from one plain TCP connect (httpx's message hides it)."""
    parts = urlsplit(source)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return FeedProbe(source, Problem.bad_scheme, "the URL's port is not a number")
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return FeedProbe(source, Problem.refused, f"nothing accepts connections at {host}:{port}")
    except socket.gaierror:
        return FeedProbe(source, Problem.not_found, f"no such host {host!r}")
    except TimeoutError:
        return FeedProbe(source, Problem.timed_out, f"no answer from {host}:{port}")
    except OSError:
        return None
    writer.close()
    return None


def _fetch_problem(error: str) -> Problem:
    """The kind of a fetch failure, from the fetcher's message (which is shown as it is)."""
    text = error.lower()
    if "http 404" in text or "http 410" in text or "no such file" in text:
        return Problem.not_found
    if "refused" in text:
        return Problem.refused
    if "timed out" in text or "timeout" in text:
        return Problem.timed_out
    if "unsupported address" in text:
        return Problem.bad_scheme
    return Problem.failed
