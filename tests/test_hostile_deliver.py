"""Hostile input at the delivery stage: injected headers, extra recipients, oversized
messages, late relays, mismatched TLS; and DKIM signatures checked by dkimpy's verifier.

Mail goes to real aiosmtpd servers on loopback; assertions are on what they received.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import random
import re
import ssl
import time
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from support import MailSink, digest_env, free_port, run_digest, serving
from test_deliver import (
    _certificate,
    add_subscribers,
    delivery_states,
    make_edition,
    settings_for,
)

from digest.config import ConfigError, load_settings
from digest.db import Database
from digest.deliver import Composer, Outgoing, Sender, SMTPUnavailable
from digest.deliver.dkim import Signer, canonical_body
from digest.deliver.message import address_header, standin
from digest.deliver.run import send_edition
from digest.models import (
    DigestError,
    MailFormat,
    RenderedDigest,
    Subscriber,
)
from digest.render import Renderer

INJECTED = "=?utf-8?q?y=0D=0ABcc:_evil@attacker.example?="
EVE = "Eve <eve@attacker.example>,"


def parse(raw: bytes) -> EmailMessage:
    """Read a message as a mail client would (UTF-8 headers allowed, RFC 6532)."""
    return email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)  # type: ignore[return-value]


def header_names(raw: bytes) -> list[str]:
    return [name.lower() for name in parse(raw)]


# --- DKIM -------------------------------------------------------------------------------


def _keys(tmp_path: Path) -> tuple[Path, Path, dict[bytes, bytes]]:
    """An RSA and an Ed25519 key in PEM files, and the TXT records a resolver would serve."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    pem = serialization.Encoding.PEM
    rsa_path, ed_path = tmp_path / "rsa.pem", tmp_path / "ed.pem"
    rsa_path.write_bytes(
        rsa_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
    )  # fmt: skip
    ed_path.write_bytes(
        ed_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    spki = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw = ed_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    records = {
        b"rsa2026._domainkey.digest.example.org.": b"v=DKIM1; k=rsa; p=" + base64.b64encode(spki),
        b"ed2026._domainkey.digest.example.org.": b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw),
    }
    return rsa_path, ed_path, records


def test_every_signature_verifies_with_dkimpy_rsa_and_ed25519(tmp_path: Path) -> None:
    rsa_path, ed_path, records = _keys(tmp_path)
    people = {
        "ann@example.com": ("Ann Lee", MailFormat.html),
        "bob@example.com": ("Bób  Ö'Neil", MailFormat.text),
        "josé@exämple.com": ("José", MailFormat.html),
        "cy@example.com": ("", MailFormat.html),
        "eve@example.com": (EVE, MailFormat.text),
    }
    with serving() as sink:
        settings = settings_for(
            tmp_path,
            sink,
            dkim_key_file=rsa_path,
            dkim_selector="rsa2026",
            dkim_ed25519_key_file=ed_path,
            dkim_ed25519_selector="ed2026",
        )
        store = Database(settings.database_url)
        for address, (name, fmt) in people.items():
            store.subscribers.add(Subscriber(email=address, name=name, format=fmt))
        report = send_edition(make_edition(), settings, store)
    assert report.sent == len(people)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return records[name]

    for _, raw in sink.envelopes:
        signatures = [v for k, v in parse(raw).items() if k.lower() == "dkim-signature"]
        assert len(signatures) == 2 and "a=rsa-sha256" in signatures[0]
        checker = dkim.DKIM(raw)
        assert checker.verify(idx=0, dnsfunc=dns), "RSA signature"
        assert checker.verify(idx=1, dnsfunc=dns), "Ed25519 signature"
        tampered = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"X: 1")
        assert not dkim.verify(tampered, dnsfunc=dns)
        assert not dkim.verify(raw.replace(b"Headline 0.0", b"Headline 9.9"), dnsfunc=dns)


def test_the_precomputed_body_hash_is_dkimpys(tmp_path: Path) -> None:
    """The body hash carried per rendering equals dkimpy's over each subscriber's full body,
    including bodies with runs of spaces and trailing blanks (relaxed canonicalisation)."""
    rsa_path, _, _ = _keys(tmp_path)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.txt").write_text(
        "Dear  {{ subscriber.name }}  \t\n\n{{ subscriber.email }}\t x  y \n"
        "{{ unsubscribe_url }}\n   \n\n\n"
    )
    with serving() as sink:
        settings = settings_for(
            tmp_path, sink, dkim_key_file=rsa_path, dkim_selector="rsa2026",
            templates_dir=templates,
        )  # fmt: skip
    composer, renderer = Composer(settings), Renderer(settings)
    for person in (Subscriber(email="a@example.com", name="Ann  Lee", format=MailFormat.text),
                   Subscriber(email="b@example.com", name="")):  # fmt: skip
        template = composer.template(renderer.render(make_edition(), standin(person)))
        assert template.body_hash is not None and template.body_hash.exact
        raw = composer.message(template, person, "<id@digest.example.org>")
        body = raw.partition(b"\r\n\r\n")[2]
        expected = base64.b64encode(hashlib.sha256(canonical_body(body)).digest())
        assert re.search(rb"bh=([^;]+);", raw).group(1) == expected  # type: ignore[union-attr]


def test_a_key_of_the_wrong_kind_is_a_clear_error(tmp_path: Path) -> None:
    rsa_path, ed_path, _ = _keys(tmp_path)
    with serving() as sink:
        wrong = settings_for(
            tmp_path, sink, dkim_key_file=ed_path, dkim_selector="a",
            dkim_ed25519_key_file=rsa_path, dkim_ed25519_selector="b",
        )  # fmt: skip
    with pytest.raises(DigestError, match=r"DIGEST_DKIM_KEY_FILE: .* not an RSA private key"):
        Signer.from_settings(wrong)
    with pytest.raises(ConfigError, match="DIGEST_DKIM_ED25519_SELECTOR: must differ"):
        load_settings(
            dkim_key_file=rsa_path, dkim_selector="s",
            dkim_ed25519_key_file=ed_path, dkim_ed25519_selector="s",
        )  # fmt: skip


# --- Address headers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["bob@example.com", "josé@exämple.com"], ids=["ascii", "smtputf8"]
)
@pytest.mark.parametrize(
    "name",
    [
        EVE,
        f"Zoë {EVE}",
        f"{EVE} " * 6,  # long: the email package's folder would drop the quotes
        f"Zoë {EVE} " * 5,
        INJECTED,
        f'"{EVE}\\',
        "José María García",
    ],
)
def test_a_name_never_adds_a_recipient_or_a_header(name: str, address: str) -> None:
    raw = address_header("To", name, address) + b"Subject: x\r\n\r\nbody\r\n"
    message = parse(raw)
    assert sorted(message.keys()) == ["Subject", "To"]
    (parsed,) = message["To"].addresses
    assert parsed.addr_spec == address
    assert "attacker" not in parsed.addr_spec and "\n" not in parsed.display_name
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    if name.isascii() or address == "josé@exämple.com":
        assert parsed.display_name == " ".join(name.split()).replace("=?", "= ?")


def test_a_hostile_name_on_the_wire_gives_one_recipient(tmp_path: Path) -> None:
    people = {"eve@example.com": EVE, "josé@exämple.com": EVE, "mal@example.com": INJECTED}
    with serving() as sink:
        settings = settings_for(tmp_path, sink, from_name="Digest, Inc. <x@y>")
        store = Database(settings.database_url)
        for address, name in people.items():
            store.subscribers.add(Subscriber(email=address, name=name))
        send_edition(make_edition(), settings, store)
    for rcpts, raw in sink.envelopes:
        message = parse(raw)
        assert [a.addr_spec for a in message["To"].addresses] == rcpts
        assert [a.addr_spec for a in message["From"].addresses] == ["news@digest.example.org"]
        assert "bcc" not in header_names(raw)


# --- Header settings ---------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["DIGEST_SUBJECT", "DIGEST_FROM_NAME", "DIGEST_FEEDBACK_ID"])
def test_an_encoded_line_break_in_a_header_setting_is_a_one_line_error(
    tmp_path: Path, setting: str
) -> None:
    for value in (INJECTED, "a\r\nBcc: evil@attacker.example"):
        with pytest.raises(ConfigError) as refused:
            load_settings(**{setting.removeprefix("DIGEST_").lower(): value})
        assert str(refused.value).startswith(f"{setting}: ")
        assert "\n" not in str(refused.value)
    result = run_digest(["run", "--dry-run"], digest_env(tmp_path, **{setting: INJECTED}), tmp_path)
    assert result.returncode == 2, result.stderr
    assert setting in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_encoded_line_break_from_a_feed_never_becomes_a_header(tmp_path: Path) -> None:
    """Defence at message build: theme labels (from feeds) reach the subject unchecked."""
    edition = make_edition()
    edition.themes[0].label = INJECTED
    with serving() as sink:
        settings = settings_for(tmp_path, sink, subject="{{ top_themes }}")
        store = Database(settings.database_url)
        store.subscribers.add(Subscriber(email="ann@example.com"))
        send_edition(edition, settings, store)
    ((_, raw),) = sink.envelopes
    assert "bcc" not in header_names(raw)
    assert parse(raw)["Subject"].startswith(INJECTED)  # shown as typed, never decoded


# --- Subjects ----------------------------------------------------------------------------


def _labels() -> list[str]:
    words = ["Alleged", "Year", "Köln", "·", "—", "“quoted”", "x" * 30, "police", "é", "😀"]
    rng = random.Random(5)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 14))) for _ in range(300)]


def test_subjects_have_no_empty_encoded_word_and_no_double_space(tmp_path: Path) -> None:
    with serving() as sink:
        settings = settings_for(tmp_path, sink)
    composer, renderer = Composer(settings), Renderer(settings)
    labels = _labels()
    for first, second in zip(labels[::2], labels[1::2], strict=True):
        edition = make_edition()
        edition.themes[0].label, edition.themes[1].label = first, second
        subject = renderer.subject(edition, Subscriber(email="a@example.com"))
        rendered = RenderedDigest(subject=subject, text="hi\n", html=None)
        raw = composer.message(composer.template(rendered), Subscriber(email="a@b.c"), "<i@d>")
        head = raw.partition(b"\r\n\r\n")[0]
        assert not re.search(rb"=\?[^?]+\?[qQbB]\?\?=", head)
        assert all(len(line) <= 78 for line in head.split(b"\r\n") if line.startswith(b" "))
        parsed = parse(raw)["Subject"]
        assert parsed == subject and "  " not in parsed


# --- Size ---------------------------------------------------------------------------------


def test_an_oversized_message_fails_alone_before_the_relay(tmp_path: Path) -> None:
    """HTML readers' messages are over the cap, text readers' are not: only the former fail,
    with the reason, and the relay never sees them; the run goes on."""
    with serving() as sink:
        small = settings_for(tmp_path, sink)
        composer = Composer(small)
        edition = make_edition()
        text_size = len(
            composer.message(
                composer.template(Renderer(small).render(edition, Subscriber(
                    email="a@example.com", format=MailFormat.text))),
                Subscriber(email="a@example.com"), "<i@d>",
            )
        )  # fmt: skip
        settings = small.model_copy(update={"max_message_bytes": text_size + 500})
        store = Database(settings.database_url)
        add_subscribers(store, [f"t{i}@example.com" for i in range(3)], format="text")
        add_subscribers(store, [f"h{i}@example.com" for i in range(3)], format="html")
        report = send_edition(edition, settings, store)
    assert (report.sent, report.failed) == (3, 3)
    assert sorted(sink.per_recipient()) == ["t0@example.com", "t1@example.com", "t2@example.com"]
    states = delivery_states(tmp_path / "digest.db", "digest/2026-03-19")
    assert all(
        state == "failed" and "over DIGEST_MAX_MESSAGE_BYTES" in error
        for address, (state, _, error) in states.items()
        if address.startswith("h")
    )


class _SizeRefusingSink(MailSink):
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        size = next((int(o[5:]) for o in mail_options if o.upper().startswith("SIZE=")), 0)
        if size > 4000:
            return "552 5.3.4 message size exceeds fixed maximum message size"
        return await super().handle_MAIL(server, session, envelope, address, mail_options)


def test_a_relays_size_refusal_fails_that_message_not_the_run(tmp_path: Path) -> None:
    sink = _SizeRefusingSink(host="127.0.0.1", port=free_port())
    with serving(sink):
        settings = settings_for(tmp_path, sink)
        store = Database(settings.database_url)
        add_subscribers(store, ["big@example.com"], format="html")
        add_subscribers(store, ["small@example.com"], format="text")
        edition = make_edition()
        edition.themes = edition.themes[:1]
        edition.themes[0].articles = edition.themes[0].articles[:1]
        report = send_edition(edition, settings, store)
    assert report.sent + report.failed == 2 and report.failed >= 1
    state, _, error = delivery_states(tmp_path / "digest.db", edition.id)["big@example.com"]
    assert state == "failed" and "552" in error


def test_the_servers_advertised_size_is_respected(tmp_path: Path) -> None:
    with serving(server_options={"data_size_limit": 3000}) as sink:
        settings = settings_for(tmp_path, sink)
        store = Database(settings.database_url)
        add_subscribers(store, ["ann@example.com"], format="html")
        report = send_edition(make_edition(), settings, store)
    assert report.failed == 1 and sink.envelopes == []
    _, _, error = delivery_states(tmp_path / "digest.db", "digest/2026-03-19")["ann@example.com"]
    assert "over the server's SIZE (3,000)" in error


# --- A late relay -----------------------------------------------------------------------


class _LateSink(MailSink):
    """Takes each message (it counts as received), then answers 250 after `late` seconds."""

    late: float = 0.0

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.envelopes.append((list(envelope.rcpt_tos), envelope.original_content))
        await asyncio.sleep(self.late)
        return "250 OK"


def _send_one(settings, data: bytes) -> list:
    results: list = []

    async def outcome(result) -> None:
        results.append(result)

    async def run() -> None:
        async with Sender(settings, outcome) as sender:
            await sender.submit(Outgoing(email="ann@example.com", message_id="<m@d>", data=data))

    asyncio.run(run())
    return results


@pytest.mark.parametrize(
    ("late", "copies", "ok", "uncertain"),
    [(0.6, 1, True, False), (2.5, 2, False, True)],
    ids=["answer-in-second-wait", "no-answer-in-two-waits"],
)
def test_a_late_answer_is_waited_for_and_resent_at_most_once(
    tmp_path: Path, late: float, copies: int, ok: bool, uncertain: bool
) -> None:
    sink = _LateSink(host="127.0.0.1", port=free_port())
    sink.late = late
    data = b"From: a@b.c\r\nTo: ann@example.com\r\nSubject: x\r\n\r\nhello\r\n"
    with serving(sink):
        settings = settings_for(tmp_path, sink, smtp_timeout=0.5, send_attempts=5)
        (result,) = _send_one(settings, data)
        time.sleep(max(0.0, late - 1.0) + 0.2)  # let a late handler finish recording
    assert len(sink.envelopes) == copies
    assert (result.ok, result.uncertain) == (ok, uncertain)
    if uncertain:
        assert "the server may have it" in (result.error or "") and result.attempts == 2


def test_a_relay_that_never_answers_gets_two_copies_then_none_on_rerun(tmp_path: Path) -> None:
    """Issue 16: a late relay got DIGEST_SEND_ATTEMPTS copies, and the next run as many again."""
    sink = _LateSink(host="127.0.0.1", port=free_port())
    sink.late = 2.5
    with serving(sink):
        settings = settings_for(tmp_path, sink, smtp_timeout=0.5, send_attempts=5)
        store = Database(settings.database_url)
        add_subscribers(store, ["ann@example.com"])
        first = send_edition(make_edition(), settings, store)
        second = send_edition(make_edition(), settings, store)
        store.close()
        time.sleep(2.2)  # let the late handlers finish recording
    assert (first.uncertain, first.undelivered) == (1, 0)
    assert (second.sent, second.uncertain, second.skipped) == (0, 0, 1)
    assert sink.count("ann@example.com") == 2
    state, attempts, _ = delivery_states(tmp_path / "digest.db", "digest/2026-03-19")[
        "ann@example.com"
    ]
    assert (state, attempts) == ("uncertain", 2)


# --- TLS and STARTTLS mismatches ----------------------------------------------------------


def _check_message(settings) -> str:
    async def open_once() -> None:
        async with Sender(settings, lambda r: asyncio.sleep(0)):
            pass

    with pytest.raises(SMTPUnavailable) as refused:
        asyncio.run(open_once())
    return str(refused.value)


def test_starttls_against_implicit_tls_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    with serving(server_options={"ssl_context": server_tls}) as sink:
        settings = settings_for(tmp_path, sink, smtp_security="starttls", smtp_timeout=1)
        message = _check_message(settings)
    assert f"does not offer STARTTLS on port {sink.port}" in message
    assert "use DIGEST_SMTP_SECURITY=tls" in message


def test_starttls_not_offered_says_so(tmp_path: Path) -> None:
    with serving() as sink:  # plain SMTP, no STARTTLS in EHLO
        settings = settings_for(tmp_path, sink, smtp_security="starttls", smtp_timeout=2)
        message = _check_message(settings)
    assert f"does not offer STARTTLS on port {sink.port}" in message


def test_implicit_tls_against_plain_smtp_says_so(tmp_path: Path) -> None:
    with serving() as sink:
        settings = settings_for(tmp_path, sink, smtp_security="tls", smtp_timeout=2)
        message = _check_message(settings)
    assert "answers in plain text, not TLS; use DIGEST_SMTP_SECURITY=starttls" in message
    assert str(sink.port) in message


def test_an_ed25519_key_in_dknewkeys_format_signs_too(tmp_path: Path) -> None:
    """dkimpy's `dknewkey --ktype ed25519` writes the bare base64 seed; operators may have one."""
    rsa_path, _, records = _keys(tmp_path)
    seed = ed25519.Ed25519PrivateKey.generate()
    raw_seed = seed.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    seed_path = tmp_path / "ed.key"
    seed_path.write_bytes(base64.b64encode(raw_seed) + b"\n")
    public = seed.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    records[b"ed2026._domainkey.digest.example.org."] = b"v=DKIM1; k=ed25519; p=" + (
        base64.b64encode(public)
    )
    settings = load_settings(
        from_address="news@digest.example.org", dkim_key_file=rsa_path, dkim_selector="rsa2026",
        dkim_ed25519_key_file=seed_path, dkim_ed25519_selector="ed2026",
    )  # fmt: skip
    signer = Signer.from_settings(settings)
    assert signer is not None
    message = signer.sign(b"From: news@digest.example.org\r\nSubject: hi\r\n\r\nbody\r\n")
    checker = dkim.DKIM(message)
    assert checker.verify(idx=0, dnsfunc=lambda name, timeout=5: records[name])
    assert checker.verify(idx=1, dnsfunc=lambda name, timeout=5: records[name])
