"""Send one realistic edition to 20,000 subscribers through a loopback SMTP sink.

    python bench/send.py [--subscribers 20000] [--connections 4] [--baseline-sample 2000]
                         [--verify-sample 200] [--no-dkim]

Prints these figures from the same run against the same sink (postfix's
`smtp-sink`, C, which reads each message in bulk, so it is not the bottleneck):

- digest: `send_edition` as `digest run` does it, delivery rows and all, in a
  child process so its peak memory is its own;
- digest with DKIM: the same, every message signed with a 2048-bit RSA key, and
  again with an Ed25519 signature beside it; then a sample of subscribers is sent
  the same way to a capturing aiosmtpd server and every signature it received is
  checked with dkimpy's verifier;
- ceiling: aiosmtplib sending one pre-built message's bytes over the same number
  of connections, nothing else;
- baseline: a MIME message built per subscriber with the `email` package and one
  smtplib connection per message (on a sample: it is slow).

and the ratios the issues set: digest >= 70% of the ceiling, >= 3x the baseline,
peak memory < 300 MB; with DKIM >= 70% of the rate without and >= 400 messages/s.
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

SECRET = "bench-secret-key-long-enough-to-sign"
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


def settings_for(
    db: Path, port: int, connections: int, dkim_key: Path | None = None, ed_key: Path | None = None
):
    return load_settings(
        dkim_key_file=dkim_key,
        dkim_selector="bench" if dkim_key else "",
        dkim_ed25519_key_file=ed_key,
        dkim_ed25519_selector="bench-ed" if ed_key else "",
        database_url=f"sqlite:///{db}",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        secret_key=SECRET,
        from_address="news@digest.example.org",
        public_url="https://digest.example.org",
        send_connections=connections,
        list_unsubscribe_mailto="leave@digest.example.org",
        postal_address="1 Bench Street, Testville",
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


def ours(
    db: Path, port: int, connections: int, dkim_key: Path | None, ed_key: Path | None = None
) -> dict:
    """The real thing, as `digest run` sends (run in a child process)."""
    settings = settings_for(db, port, connections, dkim_key, ed_key)
    store = Database(settings.database_url)
    began, cpu_began = time.perf_counter(), time.process_time()
    report = send_edition(realistic_edition(), settings, store)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"sent": report.sent, "seconds": elapsed, "peak_mb": peak, "failed": report.failed,
            "cpu": cpu}  # fmt: skip


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


def make_keys(directory: Path) -> tuple[Path, Path, dict[bytes, bytes]]:
    """A 2048-bit RSA and an Ed25519 key in PEM files, and the DNS TXT records for them."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from digest.deliver.dkim import Key

    none = serialization.NoEncryption()
    pem, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    rsa_path, ed_path = directory / "dkim-rsa.pem", directory / "dkim-ed25519.pem"
    rsa_path.write_bytes(rsa_key.private_bytes(pem, pkcs8, none))
    ed_path.write_bytes(ed_key.private_bytes(pem, pkcs8, none))
    records = {
        b"bench._domainkey.digest.example.org.": Key(b"", b"", rsa_key).dns_record().encode(),
        b"bench-ed._domainkey.digest.example.org.": Key(b"", b"", ed_key).dns_record().encode(),
    }
    return rsa_path, ed_path, records


def verify_sample(directory: Path, keys: tuple[Path, Path, dict[bytes, bytes]], count: int):
    """Send `count` subscribers the edition, signed both ways, to a capturing aiosmtpd
    server; check every signature received with dkimpy. Returns (messages, signatures ok)."""
    import dkim
    from aiosmtpd.controller import Controller

    received: list[bytes] = []

    class Capture:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.original_content)
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Capture(), hostname="127.0.0.1", port=port, server_hostname="v")
    controller.start()
    try:
        db = directory / "verify.db"
        fill_database(db, count)
        settings = settings_for(db, port, 2, keys[0], keys[1])
        store = Database(settings.database_url)
        send_edition(realistic_edition(), settings, store)
        store.close()
    finally:
        controller.stop()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return keys[2][name]

    good = sum(bool(dkim.DKIM(raw).verify(idx=i, dnsfunc=dns)) for raw in received for i in (0, 1))
    return len(received), good


def _child(
    db: Path,
    port: int,
    connections: int,
    dkim_key: Path | None = None,
    ed_key: Path | None = None,
) -> dict:
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
    if ed_key:
        command += ["--child-ed25519", str(ed_key)]
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--baseline-sample", type=int, default=2_000)
    parser.add_argument("--verify-sample", type=int, default=200)
    parser.add_argument("--no-dkim", action="store_true", help="skip the DKIM runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-dkim", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-ed25519", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # db:port
        db, port = args.child.rsplit(":", 1)
        result = ours(Path(db), int(port), args.connections, args.child_dkim, args.child_ed25519)
        print(json.dumps(result))
        return

    sink, port = start_sink()
    signed = both = verified = None
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
            if not args.no_dkim:
                keys = make_keys(Path(tmp))
                forget_deliveries(db)
                signed = _child(db, port, args.connections, keys[0])
                forget_deliveries(db)
                both = _child(db, port, args.connections, keys[0], keys[1])
                verified = verify_sample(Path(tmp), keys, args.verify_sample)
            base = baseline(settings, port, args.baseline_sample)
    finally:
        sink.terminate()
        sink.wait()

    rate = result["sent"] / result["seconds"]

    def line(label: str, run: dict) -> str:
        return (
            f"{label:<40} {run['sent'] / run['seconds']:8.0f} messages/s "
            f"({run['sent']} sent, {run['failed']} failed, {run['seconds']:.1f} s), "
            f"peak {run['peak_mb']:.0f} MB, CPU {1000 * run['cpu'] / run['sent']:.2f} ms/message"
        )

    print(f"{'ceiling  (aiosmtplib, pre-built bytes):':<40} {top:8.0f} messages/s")
    print(f"{'baseline (email pkg + smtplib/message):':<40} {base:8.0f} messages/s "
          f"({args.baseline_sample} messages)")  # fmt: skip
    print(line("digest   (send_edition, no DKIM):", result))
    if signed and both and verified:
        print(line("digest   with DKIM (RSA-2048):", signed))
        print(line("digest   with DKIM (RSA-2048 + Ed25519):", both))
    print(
        f"ratios: {rate / top:.0%} of the ceiling (target >= 70%), "
        f"{rate / base:.1f}x the baseline (target >= 3x), "
        f"peak {result['peak_mb']:.0f} MB (target < 300 MB)"
    )
    if signed and both and verified:
        rsa_rate = signed["sent"] / signed["seconds"]
        both_rate = both["sent"] / both["seconds"]
        messages, good = verified
        print(
            f"DKIM: RSA {rsa_rate / rate:.0%} of the rate without DKIM, {rsa_rate:.0f}/s "
            f"(targets >= 70%, >= 400/s); RSA + Ed25519 {both_rate / rate:.0%}, "
            f"{both_rate:.0f}/s; dkimpy verified {good} of {2 * messages} signatures on "
            f"{messages} received messages"
        )
        # CPU time per message does not depend on what else the machine runs: the rate
        # each would reach with a core of its own (the sink has the other core).
        own_core = {k: r["sent"] / r["cpu"] for k, r in (("off", result), ("rsa", signed))}
        print(
            f"with a core each (sender CPU time only): {own_core['off']:.0f}/s without DKIM, "
            f"{own_core['rsa']:.0f}/s with RSA ({own_core['rsa'] / own_core['off']:.0%})"
        )


if __name__ == "__main__":
    main()
