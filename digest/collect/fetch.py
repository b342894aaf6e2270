"""Fetch feed bytes over HTTP like a good citizen, or from a file the operator named.

Good citizen: a clear User-Agent, gzip and brotli, conditional GET, a bounded
number of redirects, `Retry-After` respected, retries with backoff and jitter on
timeouts, 429 and 5xx only. Hostile servers are bounded: bodies are decompressed
here (`inflate`), counted as they grow and cut at DIGEST_MAX_FEED_BYTES, and no
redirect or DNS answer may lead a public feed to an internal address (`netguard`).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from digest import __version__
from digest.collect import netguard
from digest.collect.inflate import SUPPORTED, InflateError, Inflater
from digest.config import Settings
from digest.errors import FetchError

USER_AGENT = f"digest/{__version__} (daily news digest; +https://github.com/digest-news/digest)"
MAX_REDIRECTS = 5
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


class _Retry(Exception):
    """A failure worth another attempt; `after` is the server's Retry-After, if any."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


@dataclass(slots=True)
class Fetched:
    """A response body, or `content=None` when the server answered 304 Not Modified."""

    content: bytes | None
    url: str
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    attempts: int = 1


class Fetcher:
    """One HTTP client for a run, with retries and polite limits per host."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        limits = httpx.Limits(max_connections=settings.fetch_concurrency)
        self.client = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT, "Accept": _ACCEPT, "Accept-Encoding": SUPPORTED},
            # Connect and each read; the whole request is bounded in `fetch`.
            timeout=httpx.Timeout(settings.fetch_timeout),
            limits=limits,
            transport=netguard.guarded_transport(limits),
            # Followed in `_get`, where each hop is checked.
            follow_redirects=False,
        )
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    def host_gate(self, source: str) -> asyncio.Semaphore:
        """The semaphore that keeps at most DIGEST_FETCH_PER_HOST requests on one server."""
        host = urlsplit(source).netloc.lower() if is_http(source) else "file"
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(self.settings.fetch_per_host)
        return self._hosts[host]

    async def fetch(
        self, source: str, etag: str | None = None, last_modified: str | None = None
    ) -> Fetched:
        """The feed's bytes (or a 304), else FetchError with a reason an operator can act on."""
        if not is_http(source):
            return Fetched(content=read_file(source, self.settings.max_feed_bytes), url=source)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        s = self.settings
        for attempt in range(s.fetch_retries + 1):
            try:
                await netguard.start_fetch(httpx.URL(source))
                async with asyncio.timeout(s.fetch_total_timeout):
                    fetched = await self._get(source, headers)
                fetched.attempts = attempt + 1
                return fetched
            except TimeoutError:
                failure = _Retry(
                    f"timed out: no complete answer within {s.fetch_total_timeout:g}s "
                    "(DIGEST_FETCH_TOTAL_TIMEOUT)"
                )
            except httpx.TimeoutException:
                failure = _Retry(f"timed out after {s.fetch_timeout:g}s (DIGEST_FETCH_TIMEOUT)")
            except _Retry as exc:
                failure = exc
            except (InflateError, netguard.InternalAddressError) as exc:
                raise FetchError(str(exc)) from None
            except httpx.HTTPError as exc:
                raise FetchError(f"connection failed: {exc or type(exc).__name__}") from None
            if attempt == s.fetch_retries:
                break
            if failure.after is not None and failure.after > s.fetch_max_retry_after:
                raise FetchError(
                    f"{failure}; the server asks to wait {failure.after:.0f}s, longer than "
                    f"DIGEST_FETCH_MAX_RETRY_AFTER ({s.fetch_max_retry_after:g}s)"
                )
            await asyncio.sleep(_delay(attempt, s.fetch_backoff, failure.after))
        tries = s.fetch_retries + 1
        raise FetchError(f"{failure} ({tries} attempt{'s' if tries > 1 else ''})")

    async def _get(self, url: str, headers: dict[str, str]) -> Fetched:
        for _ in range(MAX_REDIRECTS + 1):
            async with self.client.stream("GET", url, headers=headers) as response:
                if response.is_redirect and "Location" in response.headers:
                    target = response.url.join(response.headers["Location"])
                    if target.scheme not in ("http", "https"):
                        raise FetchError(f"redirected to an unsupported address: {target}")
                    await netguard.check_redirect(target)
                    url = str(target)
                    continue
                return await self._read(response)
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    async def _read(self, response: httpx.Response) -> Fetched:
        limit = self.settings.max_feed_bytes
        status = response.status_code
        if status == 304:
            return Fetched(content=None, url=str(response.url))
        if status == 429 or status >= 500:
            raise _Retry(
                f"HTTP {status} {response.reason_phrase}",
                _retry_after(response.headers.get("Retry-After")),
            )
        if status >= 400:
            raise FetchError(f"HTTP {status} {response.reason_phrase}")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_big(limit)
        # Raw bytes, decompressed here so that every decoded byte is counted as it appears.
        inflater = Inflater(response.headers.get("Content-Encoding", ""), limit)
        chunks: list[bytes] = []
        received = 0
        async for raw in response.aiter_raw():
            received += len(raw)
            if received > limit:
                raise _too_big(limit)
            chunks += inflater.feed(raw)
        return Fetched(
            content=b"".join(chunks),
            url=str(response.url),
            content_type=response.headers.get("Content-Type", ""),
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
        )


def _too_big(limit: int) -> FetchError:
    return FetchError(f"larger than {limit} bytes; raise DIGEST_MAX_FEED_BYTES if it is legitimate")


def _delay(attempt: int, backoff: float, retry_after: float | None) -> float:
    """Exponential backoff with jitter, so many digests do not retry in step."""
    if retry_after is not None:
        return retry_after
    return backoff * 2**attempt * random.uniform(0.5, 1.5)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def is_http(source: str) -> bool:
    return source[:8].lower().startswith(("http://", "https://"))


def read_file(source: str, max_bytes: int) -> bytes:
    """A feed from a path the operator named (plain path or file:// URL); no other scheme."""
    scheme = urlsplit(source).scheme.lower()
    if scheme == "file":
        path = Path(urlsplit(source).path)
    elif len(scheme) > 1:
        raise FetchError(f"unsupported address {source!r}: use an http(s) URL or a file path")
    else:
        path = Path(source).expanduser()
    try:
        with path.open("rb") as handle:
            content = handle.read(max_bytes + 1)
    except OSError as exc:
        raise FetchError(f"cannot read file: {exc.strerror}") from None
    if len(content) > max_bytes:
        raise FetchError(f"file larger than {max_bytes} bytes (DIGEST_MAX_FEED_BYTES)")
    return content
