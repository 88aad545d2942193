"""Mail in the user's language: every catalog covers every text of every template and
subject, nothing English leaks into a translated message, escaping and header safety
hold in every language, Accept-Language picks the language of a new account."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typogram.mail import i18n
from typogram.mail.catalog import KINDS
from typogram.mail.render import Letter, Renderer
from typogram.texts import LANGUAGES

RENDERER = Renderer(sender="Typogram <no-reply@typogram.test>", site_url="https://typogram.test")
TRANSLATED = ("es", "fr", "de", "pt", "it", "pl", "ru")
SAMPLE = {
    "link": "https://typogram.test/#/x?token=abc",
    "minutes": 30,
    "amount": "9.99 EUR",
    "plan": "Pro",
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
UNSUBSCRIBE = "https://typogram.test/unsubscribe?token=t"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def letter(kind: str, language: str, *, name: str = "Ada", **params: object) -> Letter:
    return Letter(
        message_id="m1",
        kind=kind,
        to="ada@example.com",
        name=name,
        params={**SAMPLE, **params},
        unsubscribe_url=UNSUBSCRIBE,
        language=language,
    )


def parts(message: EmailMessage) -> tuple[str, str, str]:
    """Subject, text and HTML of a message, as a receiver reads them."""
    parsed = message_from_bytes(bytes(message), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and html is not None
    return str(parsed["Subject"]), text.get_content(), html.get_content()


def test_the_languages_with_a_catalog_are_the_translated_ones() -> None:
    assert i18n.catalog_languages() == {"en", *TRANSLATED}
    assert set(i18n.catalog_languages()) <= set(LANGUAGES)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_catalog_translates_every_message_and_keeps_its_values(language: str) -> None:
    wanted = {message for message, _ in i18n.messages()}
    catalog = i18n.read_catalog(language)
    found = {str(message.id): message for message in catalog if message.id}
    assert set(found) == wanted, "run `python -m typogram.mail.i18n update`, then translate"
    for msgid, message in found.items():
        assert message.string, f"{language}: {msgid!r} is not translated"
        assert not message.fuzzy, f"{language}: {msgid!r} is fuzzy"
        translated = str(message.string)
        assert sorted(PLACEHOLDER.findall(translated)) == sorted(PLACEHOLDER.findall(msgid))
        # Only a placeholder may hold a percent sign: anything else breaks formatting.
        assert translated.count("%") == len(PLACEHOLDER.findall(translated))


def test_the_template_file_lists_every_message() -> None:
    with (i18n.catalog_path("fr").parents[2] / "messages.pot").open("rb") as fp:
        from babel.messages.pofile import read_po

        template = {str(message.id) for message in read_po(fp) if message.id}
    assert template == {message for message, _ in i18n.messages()}


@pytest.mark.parametrize("language", TRANSLATED)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_no_english_leaks_into_a_translated_message(kind: str, language: str) -> None:
    subject, text, html = parts(RENDERER.render(letter(kind, language)))
    _, english_text, english_html = parts(RENDERER.render(letter(kind, "en")))
    assert subject != parts(RENDERER.render(letter(kind, "en")))[0]
    assert text != english_text and html != english_html
    translations = i18n.translations(language)
    values = {**SAMPLE, "name": "Ada"}
    for msgid, _ in i18n.messages():
        if translations.gettext(msgid) == msgid:  # the same word in both ("Plan")
            continue
        english = msgid % values if PLACEHOLDER.search(msgid) else msgid
        whole_text = re.compile(rf"(?<!\w){re.escape(english)}(?!\w)")
        for rendered in (subject, text, html):
            assert not whole_text.search(rendered), f"{language} {kind}: English {english!r}"
    assert f'<html lang="{language}">' in html


@pytest.mark.parametrize("language", ["en", "tr", "uk", "xx", ""])
def test_a_language_without_a_catalog_reads_in_english(language: str) -> None:
    subject, text, html = parts(RENDERER.render(letter("welcome", language)))
    assert subject == "Welcome to Typogram, Ada!"
    assert "Hello Ada," in text and "Start typing" in html
    assert '<html lang="en">' in html


def test_a_string_a_catalog_lacks_reads_in_english() -> None:
    partial = i18n.CatalogTranslations({"Unsubscribe": "Se désabonner"})
    assert partial.gettext("Unsubscribe") == "Se désabonner"
    assert partial.gettext("Start typing") == "Start typing"
    assert i18n.CatalogTranslations({"Start typing": ""}).gettext("Start typing") == "Start typing"


def test_the_english_welcome_subject_starts_with_welcome() -> None:
    assert parts(RENDERER.render(letter("welcome", "en")))[0].startswith("Welcome")


def test_a_french_verification_mail_reads_in_french() -> None:
    subject, text, html = parts(RENDERER.render(letter("verify_email", "fr")))
    assert subject == "Confirmez votre adresse e-mail"
    assert text.startswith("Bonjour Ada,")
    assert SAMPLE["link"] in text and "Confirmer mon adresse" in html


LANGUAGE_CHOICES = st.sampled_from((*LANGUAGES, "xx"))


@given(language=LANGUAGE_CHOICES, name=st.text(max_size=60), title=st.text(max_size=60))
def test_values_are_escaped_in_every_language(language: str, name: str, title: str) -> None:
    hostile = "<script>alert(1)</script>"
    _, _, html = parts(
        RENDERER.render(
            letter("achievement_unlocked", language, name=name + hostile, title=hostile + title)
        )
    )
    assert "<script>" not in html and "&lt;script&gt;" in html


@given(
    language=LANGUAGE_CHOICES,
    kind=st.sampled_from(sorted(KINDS)),
    name=st.text(max_size=80),
    value=st.text(max_size=80),
)
def test_no_header_can_be_injected_in_any_language(
    language: str, kind: str, name: str, value: str
) -> None:
    params = {"title": value, "tournament": value, "days": value}
    rendered = RENDERER.render(letter(kind, language, name=name, **params))
    parsed = message_from_bytes(bytes(rendered), policy=policy.default)
    assert set(parsed.keys()) <= ALLOWED_HEADERS
    assert [a.addr_spec for a in parsed["To"].addresses] == ["ada@example.com"]
    assert "\n" not in str(rendered["Subject"]) and "\r" not in str(rendered["Subject"])
    if KINDS[kind].security:
        assert "List-Unsubscribe" not in parsed and "List-Unsubscribe-Post" not in parsed
    else:
        assert parsed["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr", "fr"),
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("pt-BR", "pt"),
        ("DE-de", "de"),
        ("en;q=0.5, ru;q=0.8", "ru"),
        ("en;q=0.8, ru;q=0.8", "en"),  # a tie: the earlier one
        ("zh-CN, ja;q=0.9, es;q=0.1", "es"),  # the first two are not platform languages
        ("es;q=0, it;q=0.3", "it"),  # q=0: not acceptable
        ("es;q=0", None),
        ("*", None),
        ("*;q=0.5, pl;q=0.4", "pl"),
        ("", None),
        (None, None),
        ("   ,  ,", None),
        ("fr;q=2, de;q=0.5", "de"),  # a weight above 1 is malformed: skipped
        ("fr;q=0.1234, de;q=0.5", "de"),  # more than three decimals
        ("fr;q=abc, de", "de"),
        ("fr;x=1, it", "it"),
        ("fr;q=0.5;q=0.9, it;q=0.1", "it"),
        ("f r, it", "it"),
        ("fr_FR, it;q=0.2", "it"),
        ("français, it", "it"),
        ("de;Q=1.000", "de"),
        ("en-US,en;q=0.9", "en"),
        ("x" * 5000 + ", fr", None),  # past the length cut
        ("xx, " * 300 + "ru", None),
    ],
)
def test_accept_language_picks_the_most_wanted_platform_language(
    header: str | None, expected: str | None
) -> None:
    assert i18n.preferred_language(header) == expected


@given(st.text(max_size=300))
def test_accept_language_never_fails_and_answers_a_platform_language(header: str) -> None:
    assert i18n.preferred_language(header) in (*LANGUAGES, None)


def test_a_catalog_can_only_be_started_for_a_platform_language() -> None:
    for bad in ("en", "xx", "fr"):  # English is the source; fr exists already
        with pytest.raises(SystemExit):
            i18n.init(bad)
    with pytest.raises(SystemExit):
        i18n.main(["nope"])
