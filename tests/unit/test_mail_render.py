"""Rendering: every kind renders both parts, HTML is escaped, headers cannot be injected
into, List-Unsubscribe only on non-security mail."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from typogram.mail.catalog import DEFAULTS, KINDS, Category, kind_of
from typogram.mail.links import read_unsubscribe_token, unsubscribe_token, unsubscribe_url
from typogram.mail.port import PermanentMailError
from typogram.mail.render import Letter, Renderer, one_line

RENDERER = Renderer(sender="Typogram <no-reply@typogram.test>", site_url="https://typogram.test")
SAMPLE = {
    "link": "https://typogram.test/#/x?token=abc",
    "minutes": 30,
    "amount": "9.99 EUR",
    "plan": "Pro monthly",
    "payment_id": "p1",
    "until": "2027-01-01",
    "title": "Speed demon",
    "description": "100 WPM",
    "days": 7,
    "tournament": "Friday cup",
    "starts_at": "18:00 UTC",
}
ALLOWED_HEADERS = {
    "To",
    "From",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
}


def letter(
    kind: str, *, name: str = "Ada", to: str = "ada@example.com", **params: object
) -> Letter:
    return Letter(
        message_id="m1",
        kind=kind,
        to=to,
        name=name,
        params={**SAMPLE, **params},
        unsubscribe_url="https://typogram.test/unsubscribe?token=t",
    )


def reparse(message: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(bytes(message), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders_a_text_and_an_html_part(kind: str) -> None:
    message = reparse(RENDERER.render(letter(kind)))
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert "Hello Ada" in text.get_content() and "Hello Ada" in html.get_content()
    assert message["Message-ID"] == "<m1@typogram.test>"
    assert set(message.keys()) <= ALLOWED_HEADERS
    security = KINDS[kind].security
    assert ("List-Unsubscribe" in message) is not security
    if not security:
        assert message["List-Unsubscribe"] == "<https://typogram.test/unsubscribe?token=t>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_welcome_subject_starts_with_welcome() -> None:
    assert RENDERER.render(letter("welcome"))["Subject"].startswith("Welcome")


def test_html_escapes_what_users_wrote() -> None:
    message = reparse(
        RENDERER.render(
            letter("achievement_unlocked", name="<b>x</b>", title="<script>alert(1)</script>")
        )
    )
    html = message.get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert "<script>" not in content and "&lt;script&gt;" in content
    assert "<b>x</b>" not in content


def test_a_letter_missing_a_value_fails_instead_of_rendering_blank() -> None:
    with pytest.raises(jinja2.UndefinedError):
        RENDERER.render(Letter(message_id="m", kind="password_reset", to="a@b.co", name="A"))
    with pytest.raises(ValueError):
        kind_of("nope")


@pytest.mark.parametrize(
    "to", ["a@b.co\r\nBcc: victim@example.com", "a@b.co, victim@example.com", "not an address", ""]
)
def test_an_address_that_is_not_one_address_can_never_go(to: str) -> None:
    with pytest.raises(PermanentMailError):
        RENDERER.render(letter("welcome", to=to))


@given(
    name=st.text(max_size=80),
    title=st.text(max_size=80),
)
def test_no_header_can_be_injected_through_names_or_subjects(name: str, title: str) -> None:
    rendered = RENDERER.render(letter("achievement_unlocked", name=name, title=title))
    message = reparse(rendered)
    assert set(message.keys()) <= ALLOWED_HEADERS
    assert message.get_all("To") is not None and len(message.get_all("To")) == 1
    assert [a.addr_spec for a in message["To"].addresses] == ["ada@example.com"]
    assert "\n" not in str(rendered["Subject"]) and "\r" not in str(rendered["Subject"])


@given(st.text())
def test_one_line_leaves_no_line_break(value: str) -> None:
    flat = one_line(value, 50)
    assert len(flat) <= 50
    assert not any(ch in flat for ch in "\r\n\x00\x0b\x0c\x85\u2028\u2029")


def test_unsubscribe_tokens_are_signed_per_user_and_category() -> None:
    token = unsubscribe_token("k" * 40, "u1", Category.BILLING)
    assert read_unsubscribe_token("k" * 40, token) == ("u1", Category.BILLING)
    forged = token.replace("billing", "tournaments")
    for bad in (forged, token + "x", "u2" + token[2:], "", "a.b", "é.billing.x" * 30):
        with pytest.raises(ValueError):
            read_unsubscribe_token("k" * 40, bad)
    with pytest.raises(ValueError):
        read_unsubscribe_token("other" * 10, token)
    assert unsubscribe_url("https://t.test", "k" * 40, "u1", Category.BILLING).startswith(
        "https://t.test/unsubscribe?token=u1.billing."
    )


def test_opt_in_categories_start_off() -> None:
    assert DEFAULTS[Category.ACHIEVEMENTS] is False
    assert DEFAULTS[Category.STREAK_REMINDERS] is False
    assert set(DEFAULTS) == set(Category)
