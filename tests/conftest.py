"""Shared fixtures: real servers on 127.0.0.1, and the database on SQLite and PostgreSQL.

Helpers (the sink, spawning `digest`, its environment) are in support.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest
from support import POSTGRES_ADMIN_URL, FeedServer, MailSink, free_port, http_serving, serving

from digest.db import Database


@pytest.fixture
def smtp_sink() -> Iterator[MailSink]:
    with serving() as sink:
        yield sink


@pytest.fixture
def slow_smtp_sink() -> Iterator[MailSink]:
    """A sink that takes a while over each message, so a send can be interrupted part-way."""
    with serving(delay=0.05) as sink:
        yield sink


@pytest.fixture
def feed_server(tmp_path: Path) -> Iterator[FeedServer]:
    """A real HTTP server on loopback serving the files in a temp directory."""
    root = tmp_path / "www"
    root.mkdir()
    with http_serving(partial(_QuietHandler, directory=str(root))) as server:  # type: ignore[arg-type]
        yield FeedServer(root=root, base_url=f"http://127.0.0.1:{server.server_port}")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


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


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A fresh database in a real SQLite file, at the current schema."""
    database = Database(f"sqlite:///{tmp_path / 'digest.db'}")
    yield database
    database.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The same test on a SQLite file and on PostgreSQL (skipped loudly when it is down)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'digest.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database(url)
    yield database
    database.close()
