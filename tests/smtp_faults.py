"""A real aiosmtpd server on loopback that misbehaves on a schedule.

Faults are numbered by transaction: every RCPT the server is willing to take
starts transaction n (1, 2, 3, ...), retries included, so a schedule like
"451 for transaction 3" hits whichever message happens to be third. Nothing is
stored for a transaction that fails, and every fault strikes before the end of
the message data, so a correct client ends with each deliverable address
holding exactly one message.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from conftest import free_port, subject_defect


@dataclass
class FaultySink:
    """Like conftest's MailSink, but `parsed()` is a method: aiosmtpd evaluates a
    handler's properties on every connection, which made a `messages` property
    re-parse everything received so far each time a client connected."""

    host: str
    port: int
    envelopes: list[tuple[list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse: set[str] = field(default_factory=set)  # 550 at RCPT, for good
    defer: set[str] = field(default_factory=set)  # 451 at RCPT, every time
    temporary: dict[int, str] = field(default_factory=dict)  # transaction -> 451/421 at DATA
    slow: set[int] = field(default_factory=set)  # transactions whose RCPT reply is late
    slow_seconds: float = 2.0
    drop_after: int | None = None  # drop each connection when it sends its next message
    refuse_sender: bool = False  # 553 at MAIL FROM, for every message
    goodbye_after: int | None = None  # after that many on a connection: 250, then 421 unasked
    connections: int = 0
    faults_injected: Counter = field(default_factory=Counter)
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if not hasattr(session, "accepted"):
            self.connections += 1
            session.accepted = 0
        if self.drop_after is not None and session.accepted >= self.drop_after:
            self.faults_injected["drop"] += 1
            server.transport.abort()
            return "421 4.4.2 connection dropped"
        if self.refuse_sender:
            self.faults_injected["553"] += 1
            return "553 5.7.1 sender address not allowed"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            self.faults_injected["550"] += 1
            return "550 5.1.1 no such mailbox here"
        if address in self.defer:
            self.faults_injected["451-rcpt"] += 1
            return "451 4.2.1 mailbox busy, try later"
        session.transaction = next(self._numbers)
        if session.transaction in self.slow:
            self.faults_injected["slow"] += 1
            await asyncio.sleep(self.slow_seconds)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self.temporary.get(session.transaction)
        if reply is not None:
            self.faults_injected[reply[:3]] += 1
            if reply.startswith("421"):
                # Like a server shutting down: the reply, then the connection closes.
                asyncio.get_running_loop().call_soon(server.transport.close)
            return reply
        defect = subject_defect(envelope.original_content)
        if defect:
            self.faults_injected["bad-subject"] += 1
            return f"554 5.6.0 {defect}"
        session.accepted += 1
        with self.lock:
            self.envelopes.append((list(envelope.rcpt_tos), envelope.original_content))
        if self.goodbye_after is not None and session.accepted >= self.goodbye_after:
            # An unsolicited 421 right behind the 250 (an idle or shutdown notice): the
            # client must not take it as the reply to its next command on this connection.
            self.faults_injected["421-unsolicited"] += 1
            transport = server.transport
            loop = asyncio.get_running_loop()
            loop.call_soon(transport.write, b"421 4.3.2 shutting down\r\n")
            loop.call_soon(transport.close)
        return "250 OK"

    def parsed(self) -> list[EmailMessage]:
        with self.lock:
            raw = [content for _, content in self.envelopes]
        return [email.message_from_bytes(r, policy=email.policy.default) for r in raw]  # type: ignore[misc]

    def env(self) -> dict[str, str]:
        return {
            "DIGEST_SMTP_HOST": self.host,
            "DIGEST_SMTP_PORT": str(self.port),
            "DIGEST_SMTP_SECURITY": "none",
        }

    def count(self, address: str) -> int:
        with self.lock:
            return sum(rcpts.count(address) for rcpts, _ in self.envelopes)

    def per_recipient(self) -> Counter:
        with self.lock:
            return Counter(r for rcpts, _ in self.envelopes for r in rcpts)


@contextmanager
def serving(
    sink: FaultySink | None = None, server_options: dict | None = None, **faults
) -> Iterator[FaultySink]:
    """Run a FaultySink on a free loopback port for the duration of the block.

    `server_options` go to aiosmtpd's Controller (TLS contexts, authenticator...).
    """
    sink = sink or FaultySink(host="127.0.0.1", port=free_port(), **faults)
    # A fixed greeting name: aiosmtpd would otherwise look up the FQDN (DNS) per connection.
    controller = Controller(
        sink,
        hostname=sink.host,
        port=sink.port,
        server_hostname="sink.test",
        **(server_options or {}),
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
