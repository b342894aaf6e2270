"""Keep feeds on the public internet from reaching inside: no redirect or DNS answer
may lead from a public host to a loopback, private, link-local or reserved address.

A feed configured on such an address (a test server, an intranet) stays allowed:
its fetch is marked internal when it starts. For every other fetch each address
the client connects to is checked at connection time, after the DNS answer that
produced it, so a name that resolves publicly once and to 127.0.0.1 the next
time (DNS rebinding) is refused too.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import os
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

# True while the fetch in this task started from an internal (non-public) address.
# Strict unless `start_fetch` said otherwise, so a new code path cannot forget the guard.
_INTERNAL: contextvars.ContextVar[bool] = contextvars.ContextVar("internal_fetch", default=False)


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_PROXY_VARIABLES += tuple(name.lower() for name in _PROXY_VARIABLES)


class InternalAddressError(Exception):
    """A fetch that started on a public host led to an internal address."""


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses only."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (a literal address is its own answer).

    A module-level seam: tests replace it to play a public DNS answer.
    """
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def open_tcp(address: str, port: int, **options: Any) -> httpcore.AsyncNetworkStream:
    """Connect to one checked address. A seam, like `resolve`."""
    return await httpcore.AnyIOBackend().connect_tcp(address, port, **options)


async def start_fetch(url: httpx.URL) -> None:
    """Mark this task's fetch internal when the configured host is not public."""
    try:
        addresses = await resolve(url.host, url.port or 443)
    except OSError:
        addresses = []  # the connection attempt will report the DNS failure
    _INTERNAL.set(bool(addresses) and not all(is_public(a) for a in addresses))


async def check_redirect(url: httpx.URL) -> None:
    """Refuse a redirect from a public fetch to a host that resolves internally."""
    if _INTERNAL.get():
        return
    try:
        addresses = await resolve(url.host, url.port or 443)
    except OSError:
        return  # unresolvable: the request fails on its own
    _refuse_internal(url.host, addresses)


def _refuse_internal(host: str, addresses: Iterable[str]) -> None:
    for address in addresses:
        if not is_public(address):
            raise InternalAddressError(
                f"refused: a feed on a public host led to {host} ({address}), a loopback, "
                "private, link-local or reserved address; configure such feeds directly"
            )


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves names itself and connects only to addresses the fetch may reach."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
        if not _INTERNAL.get():
            _refuse_internal(host, addresses)
        error: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:
            try:
                return await open_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def guarded_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport | None:
    """An httpx transport whose connections go through GuardedBackend.

    None behind an HTTP(S)_PROXY: the proxy resolves and connects, so httpx's own
    transport is kept to honour it (redirect targets are still checked here).
    """
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return None
    transport = httpx.AsyncHTTPTransport(limits=limits)
    pool = transport._pool
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=pool._ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(),
    )
    return transport
