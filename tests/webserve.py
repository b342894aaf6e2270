"""A real `digest serve` subprocess on loopback, and Debian's Chromium to look at it."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support import REPO, free_port, spawn

from digest.db import Database
from digest.models import Subscriber
from digest.subscribers import write_csv
from digest.tokens import make_token, subscriber_url

SECRET = "test-secret-key-not-for-production"
ARTIFACTS = REPO / "tests" / "artifacts"  # screenshots kept after the run (gitignored)


@dataclass
class Served:
    """A running `digest serve` and what it was started with."""

    base_url: str
    env: dict[str, str]
    cwd: Path
    process: subprocess.Popen

    def link(self, email: str, path: str = "unsubscribe") -> str:
        """The signed link a message carries, exactly as tokens.subscriber_url makes it."""
        return subscriber_url(self.base_url, SECRET, self.subscriber(email).public_id, path)

    def store(self) -> Database:
        return Database(self.env["DIGEST_DATABASE_URL"])

    def subscriber(self, email: str) -> Subscriber:
        """Read straight from the server's SQLite file."""
        store = self.store()
        try:
            sub = store.subscribers.get(email)
        finally:
            store.close()
        assert sub is not None, f"{email} is gone"
        return sub

    def status(self, email: str) -> str:
        return self.subscriber(email).status.value

    def export(self) -> str:
        """Every field of every subscriber, as `digest subscribers export` writes them."""
        store = self.store()
        out = io.StringIO()
        try:
            write_csv(store.subscribers.iter(), out)
        finally:
            store.close()
        return out.getvalue()


@contextmanager
def serving(tmp_path: Path, env: dict[str, str]) -> Iterator[Served]:
    """`digest serve` on a free port with `env` (DIGEST_PUBLIC_URL is set to it)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**env, "DIGEST_PUBLIC_URL": base_url}
    store = Database(env["DIGEST_DATABASE_URL"])
    tokens = [make_token(SECRET, s.public_id) for s in store.subscribers.iter()]
    store.close()
    process = spawn(["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path)
    try:
        _wait_until_up(base_url, process)
        yield Served(base_url=base_url, env=env, cwd=tmp_path, process=process)
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    # Tokens unlock a subscriber's settings: the server must never log them, nor addresses.
    assert "token=" not in stderr and not any(t in stderr for t in tokens)
    assert "@example.com" not in stderr, stderr
    assert "Traceback" not in stderr, stderr


def _wait_until_up(base_url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"digest serve exited early: {process.stderr.read()}")  # type: ignore[union-attr]
        try:
            if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("digest serve did not answer within 30 s")


def chromium_path() -> str:
    """Debian's chromium, driven by playwright (never `playwright install`)."""
    pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: `apt-get install chromium` (.ci/run does)")
    return chromium


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
