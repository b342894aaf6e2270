"""What the tests share besides fixtures: the SMTP sink, the feed server's handle,
one way to run `digest` in a process of its own and one to run it in-process.

Fixtures live in conftest.py; tests import these helpers from here, never conftest.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller

REPO = Path(__file__).resolve().parent.parent
SAMPLE_FEEDS = REPO / "digest" / "sample_feeds"
SAMPLE_NOW = "2026-03-19T07:00:00+00:00"
# The shared data sets (read in place, never copied in): SHARED_DATA if set, else shared/
# beside the checkout (main, CI) or beside the worktrees' folder.
_SHARED_CANDIDATES = [REPO.parent / "shared" / "data", REPO.parent.parent / "shared" / "data"]
SHARED_DATA = Path(
    os.environ.get("SHARED_DATA")
    or next((p for p in _SHARED_CANDIDATES if p.is_dir()), _SHARED_CANDIDATES[0])
)
POSTGRES_ADMIN_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Mail: a real aiosmtpd server on loopback, well-behaved unless told otherwise.


_EMPTY_ENCODED_WORD = re.compile(rb"=\?[^?\s]*\?[qQbB]\?\?=")


def subject_defect(raw: bytes) -> str | None:
    """What is wrong with a received message's Subject, if anything: no empty encoded
    word, no doubled or stray space once decoded (issue 14). Every test sink refuses
    such a message, so every subject in the suite is checked."""
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
    """What a real aiosmtpd server on loopback received, and the faults it injects.

    Faults are numbered by transaction: every RCPT the server is willing to take
    starts transaction n (1, 2, 3, ...), retries included, so "451 for transaction
    3" hits whichever message happens to be third. Nothing is stored for a
    transaction that fails, and every fault strikes before the end of the message
    data, so a correct client ends with each deliverable address holding exactly
    one message.
    """

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    envelopes: list[tuple[list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0  # seconds taken over each message, so a send can be interrupted
    refuse: set[str] = field(default_factory=set)  # 550 at RCPT, for good
    defer: set[str] = field(default_factory=set)  # 451 at RCPT, every time
    temporary: dict[int, str] = field(default_factory=dict)  # transaction -> 451/421 at DATA
    slow: set[int] = field(default_factory=set)  # transactions whose RCPT reply is late
    slow_seconds: float = 2.0
    drop_after: int | None = None  # drop each connection when it sends its next message
    refuse_sender: bool = False  # 553 at MAIL FROM, for every message
    goodbye_after: int | None = None  # after that many on a connection: 250, then 421 unasked
    connections: int = 0
    sessions: list = field(default_factory=list)  # one per connection that sent MAIL
    faults_injected: Counter = field(default_factory=Counter)
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if not hasattr(session, "accepted"):
            self.connections += 1
            session.accepted = 0
            self.sessions.append(session)
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
        if self.delay:
            await asyncio.sleep(self.delay)
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

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message received, parsed with the `email` package."""
        with self.lock:
            raw = [content for _, content in self.envelopes]
        return [email.message_from_bytes(r, policy=email.policy.default) for r in raw]  # type: ignore[misc]

    def env(self) -> dict[str, str]:
        return {
            "DIGEST_SMTP_HOST": self.host,
            "DIGEST_SMTP_PORT": str(self.port),
            "DIGEST_SMTP_SECURITY": "none",
        }

    def per_connection(self) -> list[int]:
        """Messages accepted on each connection, in the order the connections sent MAIL."""
        return [session.accepted for session in self.sessions]

    def count(self, address: str) -> int:
        with self.lock:
            return sum(rcpts.count(address) for rcpts, _ in self.envelopes)

    def per_recipient(self) -> Counter:
        with self.lock:
            return Counter(r for rcpts, _ in self.envelopes for r in rcpts)


class _Handler:
    """The aiosmtpd handler: only the hooks. aiosmtpd looks through its handler's
    attributes on every connection, and would evaluate `MailSink.messages` each time."""

    def __init__(self, sink: MailSink) -> None:
        self.handle_MAIL = sink.handle_MAIL
        self.handle_RCPT = sink.handle_RCPT
        self.handle_DATA = sink.handle_DATA


@contextmanager
def http_serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """A real threaded HTTP server on a free loopback port for the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serving(
    sink: MailSink | None = None, server_options: dict | None = None, **faults
) -> Iterator[MailSink]:
    """Run a MailSink (with any `faults`) on a free loopback port for the block.

    `server_options` go to aiosmtpd's Controller (TLS contexts, authenticator...).
    """
    sink = sink or MailSink(**faults)
    # A fixed greeting name: aiosmtpd would otherwise look up the FQDN (DNS) per connection.
    controller = Controller(
        _Handler(sink),
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


# Feeds: files served by a real HTTP server on loopback (the `feed_server` fixture).


@dataclass
class FeedServer:
    root: Path
    base_url: str

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


def serve_samples(feed_server: FeedServer) -> list[str]:
    """Put the bundled sample feeds on the feed server; their URLs, in name order."""
    urls = []
    for path in sorted(SAMPLE_FEEDS.glob("*.xml")):
        shutil.copy(path, feed_server.root / path.name)
        urls.append(feed_server.url(path.name))
    return urls


# Flags for Debian's Chromium, headless in a container.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


# Running `digest`.


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


def spawn(
    args: list[str], env: dict[str, str], cwd: Path, *, output: bool = True
) -> subprocess.Popen[str]:
    """Start `python -m digest ARGS` in a process of its own, as an operator would.

    For what needs a real process: signals, concurrent runs, a server, a kill.
    """
    pipe = subprocess.PIPE if output else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "digest", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=pipe,
        stderr=pipe,
        text=True,
    )


def run_digest(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python -m digest ARGS` in a subprocess to the end."""
    process = spawn(args, env, cwd)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def invoke(
    args: list[str], env: dict[str, str], cwd: Path, input: str | bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `digest ARGS` in this process with click's CliRunner: the same command,
    settings from `env`, working directory `cwd`, without a Python start-up.

    An exception the command let escape becomes exit status 1 and a traceback on
    stderr, as it would in a process of its own.
    """
    from click.testing import CliRunner

    from digest.cli import cli

    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("DIGEST_")}
    overrides.update(env)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    before = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner(env=overrides).invoke(cli, args, input=input, prog_name="digest")
    finally:
        os.chdir(before)
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    stderr = result.stderr
    code = result.exit_code
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exc = result.exception
        stderr += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        code = 1
    return subprocess.CompletedProcess(["digest", *args], code, result.stdout, stderr)
