"""Shared fixtures: real servers on 127.0.0.1 and a way to run the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

REPO = Path(__file__).resolve().parent.parent
SAMPLE_FEEDS = REPO / "digest" / "sample_feeds"
SAMPLE_NOW = "2026-03-19T07:00:00+00:00"


_EMPTY_ENCODED_WORD = re.compile(rb"=\?[^?\s]*\?[qQbB]\?\?=")


def subject_defect(raw: bytes) -> str | None:
    """What is wrong with a received message's Subject, if anything (issue 14: no empty
    encoded word, no doubled space once decoded). Every test sink refuses such a message."""
    head = raw.partition(b"\r\n\r\n")[0]
    if _EMPTY_ENCODED_WORD.search(head):
        return "an empty encoded word in the headers"
    message = email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.default)
    subject = str(message.get("Subject", ""))
    if "  " in subject or subject != subject.strip():
        return f"a doubled or stray space in the subject {subject!r}"
    return None


@dataclass
class MailSink:
    """What a real aiosmtpd server on loopback received."""

    host: str
    port: int
    envelopes: list[tuple[list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        defect = subject_defect(envelope.original_content)
        if defect:
            return f"554 5.6.0 {defect}"
        with self.lock:
            self.envelopes.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            raw = [content for _, content in self.envelopes]
        return [email.message_from_bytes(r, policy=email.policy.default) for r in raw]  # type: ignore[misc]

    def env(self) -> dict[str, str]:
        return {
            "DIGEST_SMTP_HOST": self.host,
            "DIGEST_SMTP_PORT": str(self.port),
            "DIGEST_SMTP_SECURITY": "none",
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler:
    """The aiosmtpd handler: only the hook, so aiosmtpd never evaluates `MailSink.messages`
    (it looks through the handler's attributes on every connection)."""

    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        return await self.sink.handle_DATA(server, session, envelope)


def _serving(sink: MailSink) -> Iterator[MailSink]:
    # A fixed server name spares aiosmtpd a DNS look-up per connection.
    controller = Controller(
        _Handler(sink), hostname=sink.host, port=sink.port, server_hostname="sink.test"
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_sink() -> Iterator[MailSink]:
    yield from _serving(MailSink(host="127.0.0.1", port=free_port()))


@dataclass
class SlowMailSink(MailSink):
    """A sink that takes a while over each message, so a send can be interrupted part-way."""

    delay: float = 0.05

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp_sink() -> Iterator[MailSink]:
    yield from _serving(SlowMailSink(host="127.0.0.1", port=free_port()))


@dataclass
class FeedServer:
    root: Path
    base_url: str

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


@pytest.fixture
def feed_server(tmp_path: Path) -> Iterator[FeedServer]:
    """A real HTTP server on loopback serving the files in a temp directory."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FeedServer(root=root, base_url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def digest_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for running `digest` against a temp SQLite file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.db'}",
            "DIGEST_OUTPUT_DIR": str(tmp_path / "preview"),
            "DIGEST_SECRET_KEY": "test-secret-key-not-for-production",
        }
    )
    env.update(extra)
    return env


def run_digest(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python -m digest ARGS` in a subprocess, as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


POSTGRES_ADMIN_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the local server, dropped afterwards.

    Skips loudly (with the reason in the test report) when no server answers:
    `.ci/run` starts the local cluster, so in CI this runs for real.
    """
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    name = f"digest_test_{os.getpid()}_{free_port()}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(
            f"PostgreSQL at {POSTGRES_ADMIN_URL} is not answering ({exc}); "
            "start it (.ci/run does) to run this test"
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{url}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
