"""The pooled SMTP sender: a few reused connections, a pace limit, retries with backoff.

Each worker owns one aiosmtplib connection and sends many messages over it,
reopening it when the server drops it, after a timeout, or after
DIGEST_SEND_MESSAGES_PER_CONNECTION messages. What the server answered decides
what happens next (see `classify`): 4xx, timeouts and dropped connections are
retried with exponential backoff and jitter; 5xx is final for that subscriber.
A message whose data got no answer at all (see `transport.transaction`) may have
arrived: it is sent again at most once in the run, then reported as uncertain.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib

from digest.config import Settings
from digest.deliver.transport import (
    MessageTooLarge,
    Unanswered,
    connect,
    transaction,
)
from digest.errors import SenderRefused, SMTPUnavailable
from digest.models import DeliveryResult


@dataclass
class Outgoing:
    """One message on its way to one subscriber."""

    email: str
    message_id: str
    data: bytes
    attempts: int = 0
    smtputf8: bool = False
    unanswered: int = 0  # attempts whose message data got no reply, even after a second wait


@dataclass(frozen=True)
class Verdict:
    """What an SMTP error means for the message."""

    error: str
    permanent: bool
    bounce: bool = False  # the address itself was refused for good (counts toward bouncing)
    reconnect: bool = False  # the connection is unusable or in an unknown state
    unanswered: bool = False  # the message data was sent and no reply came: it may be delivered


def classify(exc: BaseException) -> Verdict:
    """Sort an error by what the SMTP reply says: 4xx and lost connections are temporary.

    Raises SenderRefused when the sender itself is refused for good, and re-raises
    anything that is not an SMTP or network error.
    """
    if isinstance(exc, MessageTooLarge):
        return Verdict(str(exc), permanent=True)
    if isinstance(exc, Unanswered):
        return Verdict(str(exc), permanent=False, reconnect=True, unanswered=True)
    if isinstance(exc, _Reconnecting):
        return Verdict(f"cannot reconnect: {exc.__cause__}", permanent=False, reconnect=True)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusal = exc.recipients[0]
        return Verdict(
            f"{refusal.code} {refusal.message}",
            permanent=refusal.code >= 500,
            bounce=refusal.code >= 500,
            reconnect=refusal.code == 421,
        )
    if isinstance(exc, aiosmtplib.SMTPSenderRefused) and _about_size(exc):
        # MAIL FROM carries SIZE=: a 552 there is about this message, not the sender.
        return Verdict(f"{exc.code} {exc.message} (message too large for the server)", True)
    if isinstance(exc, aiosmtplib.SMTPSenderRefused) and exc.code >= 500:
        # Not about any subscriber: failing them all for good would be wrong.
        raise SenderRefused(
            f"the SMTP server refuses the sender {exc.sender!r} ({exc.code} {exc.message}); "
            "check DIGEST_FROM_ADDRESS and that DIGEST_SMTP_USERNAME may send as it"
        ) from None
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return Verdict(f"timed out: {exc}", permanent=False, reconnect=True)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return Verdict(
            f"{exc.code} {exc.message}",
            permanent=exc.code >= 500,
            reconnect=exc.code == 421,
        )
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return Verdict(str(exc), permanent=True)
    if isinstance(exc, ValueError):  # aiosmtplib refuses an address it cannot send to safely
        return Verdict(f"address not sendable: {exc}", permanent=True)
    if isinstance(exc, aiosmtplib.SMTPException | OSError | asyncio.TimeoutError):
        return Verdict(f"connection lost: {exc or type(exc).__name__}", False, reconnect=True)
    raise exc


def _about_size(exc: aiosmtplib.SMTPSenderRefused) -> bool:
    return exc.code == 552 or "5.3.4" in exc.message or "size" in exc.message.lower()


def backoff(settings: Settings, attempt: int) -> float:
    """Exponential backoff with jitter: half to all of base * 2^(attempt-1), capped."""
    delay = min(settings.send_backoff_max, settings.send_backoff * 2 ** (attempt - 1))
    return random.uniform(delay / 2, delay)


class _Reconnecting(Exception):
    """Reopening a pooled connection failed: temporary, whatever the reply (even a 5xx login)."""


class _Pace:
    """Spaces sends evenly to at most `rate` per second across the pool (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1 / rate if rate else 0.0
        self.next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = asyncio.get_running_loop().time()
        slot = max(now, self.next)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class _Connection:
    """One pooled SMTP connection, opened lazily and reopened when needed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: aiosmtplib.SMTP | None = None
        self.sent = 0

    async def open(self) -> aiosmtplib.SMTP:
        client = await connect(self.settings)
        self.client, self.sent = client, 0
        return client

    async def send(self, job: Outgoing) -> None:
        client = self.client
        if client is None or not client.is_connected:
            try:
                client = await self.open()
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise _Reconnecting() from exc
        self.sent += 1
        await transaction(client, self.settings, job.email, job.data, job.smtputf8)
        if self.sent >= self.settings.send_messages_per_connection:
            await self.close()

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()

    def drop(self) -> None:
        """Forget a connection in an unknown state without talking to it."""
        client, self.client = self.client, None
        if client is not None:
            client.close()


class Sender:
    """Sends queued messages over a pool of connections; reports each final outcome.

    `on_outcome` is awaited once per message with its final result (a worker takes
    its next message only after, so a recorder can make each outcome durable first),
    and `on_retry` is called once per temporary failure that will be tried again.
    """

    def __init__(
        self,
        settings: Settings,
        on_outcome: Callable[[DeliveryResult], Awaitable[None]],
        on_retry: Callable[[Outgoing, Verdict], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_outcome = on_outcome
        self.on_retry = on_retry or (lambda job, verdict: None)
        size = settings.send_connections
        self._queue: asyncio.Queue[Outgoing] = asyncio.Queue(maxsize=size * 2)
        self._pace = _Pace(settings.send_rate)
        self._connections = [_Connection(settings) for _ in range(size)]
        self._workers: list[asyncio.Task] = []
        self._retries: set[asyncio.Task] = set()
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._fatal: BaseException | None = None

    async def __aenter__(self) -> Sender:
        await self._open_first()
        self._workers = [asyncio.create_task(self._work(c)) for c in self._connections]
        return self

    async def __aexit__(self, exc_type: type | None, *_: object) -> None:
        """Wait for every queued message (and its retries) unless leaving on an error."""
        if exc_type is None:
            await self._idle.wait()
        await _cancel_all([*self._retries, *self._workers])
        for connection in self._connections:
            await connection.close()
        if self._fatal is not None and exc_type is None:
            raise self._fatal

    async def submit(self, job: Outgoing) -> None:
        """Queue a message; waits while the pool is busy, so memory stays flat."""
        if self._fatal is not None:
            raise self._fatal
        self._outstanding += 1
        self._idle.clear()
        await self._queue.put(job)

    async def _open_first(self) -> None:
        """Open one connection up front so a wrong host or password stops the run clearly."""
        s = self.settings
        try:
            await self._connections[0].open()
        except SMTPUnavailable:
            raise  # a security mismatch, already worded for the operator
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise SMTPUnavailable(
                f"SMTP login as {s.smtp_username!r} refused ({exc.code}); "
                "check DIGEST_SMTP_USERNAME and DIGEST_SMTP_PASSWORD"
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SMTPUnavailable(
                f"cannot reach the SMTP server {s.smtp_host}:{s.effective_smtp_port}: {exc}; "
                "check DIGEST_SMTP_HOST, DIGEST_SMTP_PORT and DIGEST_SMTP_SECURITY"
            ) from None

    async def _work(self, connection: _Connection) -> None:
        while True:
            job = await self._queue.get()
            if self._fatal is not None:
                continue  # keep the queue moving so submit() sees the error
            try:
                await self._send(connection, job)
            except Exception as exc:  # e.g. the database failed while recording an outcome
                self._fatal = exc
                self._idle.set()

    async def _send(self, connection: _Connection, job: Outgoing) -> None:
        await self._pace.wait()
        job.attempts += 1
        try:
            await connection.send(job)
        except Exception as exc:  # sorted by classify; anything unknown re-raises there
            verdict = classify(exc)
            if verdict.reconnect:
                connection.drop()
            await self._failed(job, verdict)
        else:
            await self._finish(job)

    async def _failed(self, job: Outgoing, verdict: Verdict) -> None:
        # After an unanswered attempt (the server may have the message), one resend only.
        retry = not verdict.permanent and job.attempts < self.settings.send_attempts
        retry = retry and not job.unanswered
        job.unanswered += verdict.unanswered
        if not retry:
            await self._finish(job, verdict)
            return
        self.on_retry(job, verdict)
        task = asyncio.create_task(self._retry_later(job, backoff(self.settings, job.attempts)))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _retry_later(self, job: Outgoing, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._queue.put(job)

    async def _finish(self, job: Outgoing, verdict: Verdict | None = None) -> None:
        """Report the final result of one message (after any retries)."""
        await self.on_outcome(
            DeliveryResult(
                email=job.email,
                ok=verdict is None,
                message_id=job.message_id,
                error=verdict.error if verdict else None,
                permanent=verdict.permanent if verdict else False,
                bounce=verdict.bounce if verdict else False,
                attempts=job.attempts,
                uncertain=verdict is not None and job.unanswered > 0,
            )
        )
        self._outstanding -= 1
        if self._outstanding == 0:
            self._idle.set()


async def _cancel_all(tasks: list[asyncio.Task]) -> None:
    """Cancel tasks and wait for them, cancelling again any that swallowed the request.

    A cancel that lands while aiosmtplib is reading a reply can be absorbed by it,
    leaving the worker waiting on the queue for ever: ask until every task is done.
    """
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
