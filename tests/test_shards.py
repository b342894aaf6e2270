"""Several workers share one edition through PostgreSQL, and concurrent runs are refused."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from support import SAMPLE_FEEDS, SAMPLE_NOW, MailSink, digest_env, invoke, spawn


def _import(addresses: list[str], env: dict[str, str], tmp_path: Path) -> None:
    csv = tmp_path / "subscribers.csv"
    csv.write_text("email\n" + "\n".join(addresses) + "\n")
    result = invoke(["subscribers", "import", str(csv)], env, tmp_path)
    assert result.returncode == 0, result.stderr


def test_four_shards_on_postgresql_deliver_each_subscriber_exactly_once(
    tmp_path: Path, smtp_sink: MailSink, postgres_url: str
) -> None:
    env = digest_env(tmp_path, DIGEST_DATABASE_URL=postgres_url, **smtp_sink.env())
    addresses = [f"reader{n:04d}@example.com" for n in range(4000)]
    _import(addresses, env, tmp_path)

    workers = [
        spawn(["run", "--now", SAMPLE_NOW, "--shard", f"{k}/4"], env, tmp_path) for k in range(4)
    ]
    outcomes = [(w.wait(timeout=240), *w.communicate()) for w in workers]

    for status, stdout, stderr in outcomes:
        assert status == 0, stdout + stderr
    assert Counter(r for rcpts, _ in smtp_sink.envelopes for r in rcpts) == dict.fromkeys(
        addresses, 1
    )
    # One worker built the edition; the others reused the stored one instead of fetching.
    built = sum("collected" in stderr for _, _, stderr in outcomes)
    assert built == 1, [stderr for _, _, stderr in outcomes]


def test_a_second_run_of_the_same_edition_is_refused_while_the_first_sends(
    tmp_path: Path, slow_smtp_sink: MailSink
) -> None:
    env = digest_env(
        tmp_path,
        DIGEST_FEEDS=str(SAMPLE_FEEDS / "global-wire.rss.xml"),
        # One connection to a slow sink: the first run takes about ten seconds.
        DIGEST_SEND_CONNECTIONS="1",
        **slow_smtp_sink.env(),
    )
    addresses = [f"reader{n:03d}@example.com" for n in range(200)]
    _import(addresses, env, tmp_path)

    first = spawn(["run", "--now", SAMPLE_NOW], env, tmp_path)
    try:
        deadline_ok = _wait_for_mail(slow_smtp_sink, 1, timeout=60)
        assert deadline_ok, "the first run sent nothing"
        second = invoke(["run", "--now", SAMPLE_NOW], env, tmp_path)
    finally:
        status = first.wait(timeout=120)
        stdout, stderr = first.communicate()

    assert len(slow_smtp_sink.envelopes) == len(addresses)
    assert second.returncode == 5, second.stdout + second.stderr
    assert "already being sent" in second.stderr
    assert status == 0, stdout + stderr
    assert Counter(r for rcpts, _ in slow_smtp_sink.envelopes for r in rcpts) == dict.fromkeys(
        addresses, 1
    )


def _wait_for_mail(sink: MailSink, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(sink.envelopes) >= count:
            return True
        time.sleep(0.05)
    return False
