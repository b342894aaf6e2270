"""Send one realistic edition to 20,000 subscribers through a loopback SMTP sink.

    python bench/send.py [--subscribers 20000] [--connections 4] [--baseline-sample 2000]

Prints three figures from the same run against the same sink (postfix's
`smtp-sink`, C, which reads each message in bulk, so it is not the bottleneck):

- digest: `send_edition` as `digest run` does it, delivery rows and all, in a
  child process so its peak memory is its own;
- ceiling: aiosmtplib sending one pre-built message's bytes over the same number
  of connections, nothing else;
- baseline: a MIME message built per subscriber with the `email` package and one
  smtplib connection per message (on a sample: it is slow).

and the ratios the issue sets: digest >= 70% of the ceiling, >= 3x the baseline,
peak memory < 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import aiosmtplib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.config import load_settings
from digest.db import Database
from digest.db.schema import deliveries, subscribers
from digest.deliver import Composer
from digest.deliver.run import send_edition
from digest.deliver.views import Views
from digest.models import Article, Edition, Subscriber, Theme
from digest.render import Renderer

SECRET = "bench-secret-key"
WORDS = [
    "government", "minister", "talks", "energy", "market", "storm", "coast", "council",
    "budget", "court", "ruling", "union", "strike", "rail", "port", "trade", "deal", "tariff",
    "climate", "summit", "election", "poll", "vote", "bank", "rates", "inflation", "housing",
    "prices", "hospital", "health", "study", "science", "space", "launch", "team", "final",
    "match", "season", "record", "museum", "art", "festival", "city", "river", "bridge",
    "flood", "rescue",
]  # fmt: skip
SOURCES = ["Global Wire", "The Daily Ledger", "Northern Courier", "Harbour Times", "Metro Post"]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"]


def realistic_edition(themes: int = 12, articles: int = 100) -> Edition:
    """Twelve themes, about a hundred articles, with summaries of a few sentences."""
    rng = random.Random(7)
    end = datetime(2026, 3, 19, 7, tzinfo=UTC)

    def sentence(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."

    grouped = []
    for t in range(themes):
        count = articles // themes + (1 if t < articles % themes else 0)
        label = " ".join(rng.sample(WORDS, 2)).title()
        items = [
            Article(
                key=f"https://news.example.com/{t}/{a}",
                title=sentence(rng.randint(7, 13))[:-1],
                url=f"https://news.example.com/2026/03/19/{t}-{a}-{rng.randrange(10**6)}?utm_source=rss",
                source=rng.choice(SOURCES),
                feed_url="https://news.example.com/feed",
                published=end - timedelta(minutes=rng.randrange(24 * 60)),
                summary=" ".join(sentence(rng.randint(10, 18)) for _ in range(3))[:300],
            )
            for a in range(count)
        ]
        grouped.append(Theme(label=label, articles=items))
    return Edition(
        id="bench/2026-03-19",
        generated_at=end,
        window_start=end - timedelta(days=1),
        window_end=end,
        themes=grouped,
        feeds=[],
    )


def settings_for(db: Path, port: int, connections: int, dkim_key: Path | None = None):
    return load_settings(
        dkim_key_file=dkim_key,
        dkim_selector="bench" if dkim_key else "",
        database_url=f"sqlite:///{db}",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        secret_key=SECRET,
        from_address="news@digest.example.org",
        public_url="https://digest.example.org",
        send_connections=connections,
        list_unsubscribe_mailto="leave@digest.example.org",
    )


def forget_deliveries(db: Path) -> None:
    """So the edition can be sent to everyone again."""
    store = Database(f"sqlite:///{db}")
    with store.engine.begin() as conn:
        conn.execute(deliveries.delete())
    store.close()


def fill_database(db: Path, count: int) -> None:
    """Subscribers with a realistic spread of preferences: mostly HTML, a few time zones."""
    store = Database(f"sqlite:///{db}")
    stamp = datetime.now(UTC)
    rows = [
        {
            "email": f"reader{i:06d}@example.com",
            "name": f"Reader {i}",
            "format": "text" if i % 10 == 0 else "html",
            "timezone": ZONES[i % len(ZONES)],
            "created_at": stamp,
            "updated_at": stamp,
        }
        for i in range(count)
    ]
    with store.engine.begin() as conn:
        conn.execute(subscribers.insert(), rows)
    store.close()


def start_sink() -> tuple[subprocess.Popen, int]:
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not Path(binary).exists():
        sys.exit("bench/send.py needs postfix's smtp-sink (apt-get install postfix): not found")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(
        [binary, *user, f"127.0.0.1:{port}", "1024"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return sink, port
        except OSError:
            time.sleep(0.05)
    sink.kill()
    sys.exit("smtp-sink did not start listening within 10 s")


def ours(db: Path, port: int, connections: int, dkim_key: Path | None) -> dict:
    """The real thing, as `digest run` sends (run in a child process)."""
    settings = settings_for(db, port, connections, dkim_key)
    store = Database(settings.database_url)
    began = time.perf_counter()
    report = send_edition(realistic_edition(), settings, store)
    elapsed = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"sent": report.sent, "seconds": elapsed, "peak_mb": peak, "failed": report.failed}


def sample_message(settings) -> bytes:
    composer = Composer(settings)
    views = Views(realistic_edition(), settings, composer)
    return views.message(Subscriber(email="reader000001@example.com", name="Reader 1"), "<x@y>")


def ceiling(data: bytes, port: int, connections: int, total: int) -> float:
    """aiosmtplib sending the same pre-built bytes over `connections` connections."""

    async def worker(count: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="bench")
        await client.connect()
        for i in range(count):
            await client.sendmail("news@digest.example.org", [f"r{i}@example.com"], data)
        await client.quit()

    async def run() -> None:
        share = [total // connections + (i < total % connections) for i in range(connections)]
        await asyncio.gather(*(worker(n) for n in share))

    began = time.perf_counter()
    asyncio.run(run())
    return total / (time.perf_counter() - began)


def baseline(settings, port: int, total: int) -> float:
    """The email package builds each message; smtplib opens a connection per message."""
    edition = realistic_edition()
    renderer = Renderer(settings)
    rendered = renderer.render(edition, Subscriber(email="reader@example.com"))
    began = time.perf_counter()
    for i in range(total):
        message = EmailMessage()
        message["From"] = Address(settings.from_name, addr_spec=settings.from_address)
        message["To"] = Address(f"Reader {i}", addr_spec=f"reader{i:06d}@example.com")
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain="digest.example.org")
        message.set_content(rendered.text, subtype="plain", cte="quoted-printable")
        message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
        with smtplib.SMTP("127.0.0.1", port, local_hostname="bench") as smtp:
            smtp.send_message(message)
    return total / (time.perf_counter() - began)


def _child(db: Path, port: int, connections: int, dkim_key: Path | None = None) -> dict:
    """Run `ours` in a fresh process, so the peak memory measured is the send's own."""
    command = [
        sys.executable,
        __file__,
        "--child",
        f"{db}:{port}",
        "--connections",
        str(connections),
    ]
    if dkim_key:
        command += ["--child-dkim", str(dkim_key)]
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--baseline-sample", type=int, default=2_000)
    parser.add_argument(
        "--dkim", action="store_true", help="also time digest with DKIM signing (2048-bit RSA)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-dkim", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # db:port
        db, port = args.child.rsplit(":", 1)
        print(json.dumps(ours(Path(db), int(port), args.connections, args.child_dkim)))
        return

    sink, port = start_sink()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.db"
            fill_database(db, args.subscribers)
            settings = settings_for(db, port, args.connections)
            data = sample_message(settings)
            print(
                f"edition: 12 themes, 100 articles; message {len(data) / 1024:.0f} KB; "
                f"{args.subscribers} subscribers; {args.connections} connections; sink smtp-sink"
            )
            top = ceiling(data, port, args.connections, args.subscribers)
            result = _child(db, port, args.connections)
            base = baseline(settings, port, args.baseline_sample)
            signed = None
            if args.dkim:
                key = Path(tmp) / "dkim.pem"
                subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                               capture_output=True)  # fmt: skip
                forget_deliveries(db)
                signed = _child(db, port, args.connections, key)
    finally:
        sink.terminate()
        sink.wait()

    rate = result["sent"] / result["seconds"]
    print(f"ceiling  (aiosmtplib, pre-built bytes): {top:8.0f} messages/s")
    print(f"baseline (email pkg + smtplib/message):  {base:8.0f} messages/s "
          f"({args.baseline_sample} messages)")  # fmt: skip
    print(
        f"digest   (send_edition):                 {rate:8.0f} messages/s "
        f"({result['sent']} sent, {result['failed']} failed, {result['seconds']:.1f} s), "
        f"peak {result['peak_mb']:.0f} MB"
    )
    if signed:
        print(
            f"digest with DKIM (2048-bit RSA, dkimpy): "
            f"{signed['sent'] / signed['seconds']:5.0f} messages/s, peak {signed['peak_mb']:.0f} MB"
        )
    print(
        f"ratios: {rate / top:.0%} of the ceiling (target >= 70%), "
        f"{rate / base:.1f}x the baseline (target >= 3x), "
        f"peak {result['peak_mb']:.0f} MB (target < 300 MB)"
    )


if __name__ == "__main__":
    main()
