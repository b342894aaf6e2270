"""Fetch feed bytes over HTTP or from a file the operator named."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import httpx

from digest import __version__

USER_AGENT = f"digest/{__version__} (daily news digest; +https://github.com/digest-news/digest)"


class FetchError(Exception):
    """The feed could not be fetched; the message says why."""


@dataclass(slots=True)
class Fetched:
    content: bytes


def make_client(timeout: float, concurrency: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT, "Accept": _ACCEPT},
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=concurrency),
        follow_redirects=True,
        max_redirects=5,
    )


_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


async def fetch(client: httpx.AsyncClient, source: str, max_bytes: int, timeout: float) -> Fetched:
    """Return the feed's bytes, or raise FetchError with a reason an operator can act on."""
    if not source.startswith(("http://", "https://")):
        return Fetched(content=_read_file(source, max_bytes))
    try:
        return await asyncio.wait_for(_get(client, source, max_bytes), timeout=timeout * 2)
    except TimeoutError:
        raise FetchError(f"timed out after {timeout * 2:.0f}s") from None
    except httpx.TimeoutException:
        raise FetchError(f"timed out after {timeout:.0f}s") from None
    except httpx.TooManyRedirects:
        raise FetchError("too many redirects") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"connection failed: {exc or type(exc).__name__}") from None


async def _get(client: httpx.AsyncClient, url: str, max_bytes: int) -> Fetched:
    async with client.stream("GET", url) as response:
        if response.status_code >= 400:
            raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}")
        chunks = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(
                    f"larger than {max_bytes} bytes; "
                    "raise DIGEST_MAX_FEED_BYTES if it is legitimate"
                )
            chunks.append(chunk)
    return Fetched(content=b"".join(chunks))


def _read_file(source: str, max_bytes: int) -> bytes:
    path = Path(source.removeprefix("file://")).expanduser()
    try:
        if path.stat().st_size > max_bytes:
            raise FetchError(f"file larger than {max_bytes} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise FetchError(f"cannot read file: {exc.strerror}") from None
