"""The mail port's adapters against what they talk to: a real SMTP server (aiosmtpd) and
a real Maildir on disk, refusals included."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.smtp_server import free_port, smtp_server
from typogram.mail.maildir import MaildirTransport
from typogram.mail.port import PermanentMailError, TemporaryMailError
from typogram.mail.smtp import SmtpTarget, SmtpTransport
from typogram.mail.transport import transport_from_settings

pytestmark = pytest.mark.integration


def message(to: str = "ada@example.com", n: int = 1) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Typogram <no-reply@typogram.test>"
    msg["To"] = to
    msg["Subject"] = f"Hello {n}"
    msg["Message-ID"] = f"<m{n}@typogram.test>"
    msg.set_content(f"body {n}")
    return msg


def transport(port: int, *, url: str | None = None, require_tls: bool = False) -> SmtpTransport:
    return SmtpTransport.from_url(
        url or f"smtp://127.0.0.1:{port}", require_tls=require_tls, timeout_s=2.0, pool_size=2
    )


async def test_smtp_delivers_and_reuses_its_connection() -> None:
    with smtp_server() as (server, port):
        async with transport(port) as smtp:
            for n in range(3):
                assert await smtp.send(message(n=n)) == f"<m{n}@typogram.test>"
            stats = smtp.statistics()
    assert [m["Subject"] for m in server.messages] == ["Hello 0", "Hello 1", "Hello 2"]
    assert server.envelopes[0] == ("no-reply@typogram.test", ["ada@example.com"])
    assert stats["connects"] == 1 and stats["sent"] == 3


async def test_smtp_authenticates_with_the_urls_credentials() -> None:
    with smtp_server(auth=True) as (server, port):
        async with transport(port, url=f"smtp://mailer:s3cret@127.0.0.1:{port}") as smtp:
            await smtp.send(message())
        async with transport(port, url=f"smtp://mailer:wrong@127.0.0.1:{port}") as smtp:
            with pytest.raises(PermanentMailError):
                await smtp.send(message(n=2))
    assert len(server.messages) == 1


async def test_a_5xx_recipient_refusal_is_permanent_and_the_next_message_still_goes() -> None:
    with smtp_server() as (server, port):
        server.refuse_rcpt["gone@example.com"] = "550 5.1.1 no such user"
        async with transport(port) as smtp:
            with pytest.raises(PermanentMailError) as refused:
                await smtp.send(message("gone@example.com"))
            assert refused.value.code == 550
            await smtp.send(message(n=2))
    assert [m["Subject"] for m in server.messages] == ["Hello 2"]


async def test_a_4xx_refusal_is_temporary() -> None:
    with smtp_server() as (server, port):
        server.refuse_rcpt["busy@example.com"] = "450 4.2.1 mailbox busy"
        server.refuse_data = None
        async with transport(port) as smtp:
            with pytest.raises(TemporaryMailError) as refused:
                await smtp.send(message("busy@example.com"))
            assert refused.value.code == 450
            server.refuse_data = "451 4.3.0 local error, try later"
            with pytest.raises(TemporaryMailError) as data_refused:
                await smtp.send(message(n=2))
            assert data_refused.value.code == 451
            server.refuse_data = "554 5.6.0 message refused"
            with pytest.raises(PermanentMailError):
                await smtp.send(message(n=3))
    assert server.messages == []


async def test_a_server_that_is_down_is_a_temporary_failure() -> None:
    async with transport(free_port()) as smtp:
        with pytest.raises(TemporaryMailError):
            await smtp.send(message())
        with pytest.raises(TemporaryMailError):
            await smtp.ping()


async def test_required_starttls_refuses_a_server_that_does_not_offer_it() -> None:
    with smtp_server() as (server, port):
        async with transport(port, require_tls=True) as smtp:
            with pytest.raises(TemporaryMailError):
                await smtp.send(message())
    assert server.messages == []


async def test_a_connection_the_server_dropped_while_idle_is_replaced() -> None:
    with smtp_server() as (server, port):
        async with transport(port) as smtp:
            await smtp.send(message(n=1))
            for client in smtp._idle:  # the server closes it while it waits
                client.close()
            await smtp.send(message(n=2))
    assert [m["Subject"] for m in server.messages] == ["Hello 1", "Hello 2"]


async def test_use_after_close_is_refused() -> None:
    smtp = transport(free_port())
    async with smtp:
        pass
    with pytest.raises(RuntimeError):
        await smtp.send(message())


def test_smtp_urls() -> None:
    assert SmtpTarget.parse("smtp://mail.example.com") == SmtpTarget("mail.example.com", 587, False)
    assert SmtpTarget.parse("smtps://u%40x:p%3Aw@mx:2465") == SmtpTarget(
        "mx", 2465, True, "u@x", "p:w"
    )
    for bad in ("http://mx", "smtp://", "smtp://mx:notaport"):
        with pytest.raises(ValueError):
            SmtpTarget.parse(bad)


async def test_maildir_keeps_every_message_where_a_mail_client_reads_it(tmp_path: Path) -> None:
    async with MaildirTransport(tmp_path / "mail") as maildir:
        assert await maildir.send(message(n=1)) == "<m1@typogram.test>"
        await maildir.send(message(n=2))
        with pytest.raises(PermanentMailError):
            await maildir.send(EmailMessage())
    box = mailbox.Maildir(tmp_path / "mail", create=False)
    assert sorted(str(m["Subject"]) for m in box) == ["Hello 1", "Hello 2"]
    with pytest.raises(RuntimeError):
        await maildir.send(message())


def test_the_settings_pick_the_transport(tmp_path: Path) -> None:
    embedded = transport_from_settings(make_settings(data_dir=str(tmp_path)))
    assert isinstance(embedded, MaildirTransport) and embedded.path == tmp_path / "mail"
    smtp = transport_from_settings(make_settings(smtp_url="smtps://mx.example.com"))
    assert isinstance(smtp, SmtpTransport)
