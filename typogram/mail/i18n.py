"""The languages mail is written in: gettext catalogs for the templates and subjects.

Rules:

1. Every text of a template (``templates/``) and every subject
   (``catalog.KINDS``) is one ``{% trans %}`` message; its msgid is the
   English text with ``%(name)s`` for each value (Jinja's i18n extension,
   whitespace trimmed).
2. A language with a catalog has ``locale/<code>/LC_MESSAGES/messages.po``
   (Babel reads it when the process first writes in that language; nothing
   is compiled at install time). Any other language of the platform
   (``typogram.texts.LANGUAGES``), and any message a catalog leaves empty or
   marks fuzzy, falls back to the English text.
3. A new account's language is the one its ``Accept-Language`` header
   prefers most (``preferred_language``), when that is a platform language.
4. ``python -m typogram.mail.i18n update`` writes ``messages.pot`` from the
   templates and brings every catalog up to date with it (new messages
   empty, gone ones dropped); ``python -m typogram.mail.i18n init <code>``
   starts a catalog for a new language (see docs/email.md).
"""

from __future__ import annotations

import functools
import gettext
import re
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import jinja2
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from typogram.mail.catalog import KINDS
from typogram.texts import LANGUAGES

DOMAIN = "messages"
SOURCE_LANGUAGE = "en"


def _locale_dir() -> Path:
    return Path(str(resources.files("typogram.mail").joinpath("locale")))


def catalog_path(language: str) -> Path:
    return _locale_dir() / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def catalog_languages() -> frozenset[str]:
    """The languages with a catalog (rule 2), English included."""
    found = {path.parent.parent.name for path in _locale_dir().glob(f"*/LC_MESSAGES/{DOMAIN}.po")}
    return frozenset(found & set(LANGUAGES)) | {SOURCE_LANGUAGE}


def mail_language(language: str) -> str:
    """The language a message to a user who prefers ``language`` is written in."""
    return language if language in catalog_languages() else SOURCE_LANGUAGE


# RFC 9110 section 12.5.4: a language range, then an optional weight (at most three decimals).
_RANGE = re.compile(r"(?:[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)")
_WEIGHT = re.compile(r"[qQ]=(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")
ACCEPT_LANGUAGE_MAX = 1024  # a longer header is cut there (what is cut off is ignored)


def preferred_language(header: str | None) -> str | None:
    """Rule 3: the platform language ``header`` (an ``Accept-Language`` value) weighs
    most, the earlier one on a tie; ``None`` when it names none (or only with
    ``q=0``). A region is ignored (``pt-BR`` is ``pt``); a malformed entry or
    weight is skipped, never an error."""
    best: tuple[float, str] | None = None
    for entry in (header or "")[:ACCEPT_LANGUAGE_MAX].split(","):
        tag, *rest = (part.strip() for part in entry.split(";"))
        if not _RANGE.fullmatch(tag) or len(rest) > 1:
            continue
        weight = 1.0
        if rest:
            if not _WEIGHT.fullmatch(rest[0]):
                continue
            weight = float(rest[0][2:])
        language = tag.partition("-")[0].lower()
        if weight > 0 and language in LANGUAGES and (best is None or weight > best[0]):
            best = (weight, language)
    return best[1] if best else None


class CatalogTranslations(gettext.NullTranslations):
    """A ``.po`` catalog's translated messages; an untranslated one reads in English."""

    def __init__(self, messages: dict[str, str]) -> None:
        super().__init__()
        self._messages = messages

    def gettext(self, message: str) -> str:
        return self._messages.get(message) or message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return msgid1 if n == 1 else msgid2


def read_catalog(language: str) -> Catalog:
    with catalog_path(language).open("rb") as fp:
        return read_po(fp, locale=language, domain=DOMAIN)


def translations(language: str) -> gettext.NullTranslations:
    """Rule 2: the translations mail in ``language`` is written with."""
    return _translations(mail_language(language))


@functools.cache  # one entry per catalog language at most
def _translations(language: str) -> gettext.NullTranslations:
    if language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    messages = {
        str(message.id): str(message.string)
        for message in read_catalog(language)
        if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
    }
    return CatalogTranslations(messages)


def environment(*, autoescape: bool) -> jinja2.Environment:
    """An environment with the i18n extension, trimming as rule 1 says."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("typogram.mail", "templates"),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True
    return env


def messages() -> Iterator[tuple[str, str]]:
    """Rule 1: every message, with where it comes from (a template or a subject)."""
    env = environment(autoescape=False)
    loader = env.loader
    assert loader is not None
    for name in sorted(loader.list_templates()):
        source = loader.get_source(env, name)[0]
        for _, _, message in env.extract_translations(source):  # type: ignore[attr-defined]
            if isinstance(message, str):
                yield message, f"templates/{name}"
    for kind in KINDS.values():
        for _, _, message in env.extract_translations(kind.subject):  # type: ignore[attr-defined]
            if isinstance(message, str):
                yield message, f"subject of {kind.name}"


def template_catalog() -> Catalog:
    catalog = Catalog(project="Typogram", domain=DOMAIN, locale=None)
    for message, origin in messages():
        catalog.add(message, locations=[(origin, 0)])
    return catalog


def _write(catalog: Catalog, path: Path) -> None:
    language = catalog.locale.english_name if catalog.locale else "Every language"
    catalog.header_comment = f"# {language}: the texts of Typogram's e-mail (docs/email.md)."
    catalog.msgid_bugs_address = ""
    catalog.last_translator = "Typogram"
    catalog.language_team = "Typogram"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fp:
        write_po(fp, catalog, width=100, omit_header=False, include_lineno=False)


def update() -> None:
    """Rule 3: the template file and every catalog, up to date with the templates."""
    template = template_catalog()
    _write(template, _locale_dir() / f"{DOMAIN}.pot")
    for language in sorted(catalog_languages() - {SOURCE_LANGUAGE}):
        catalog = read_catalog(language)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        _write(catalog, catalog_path(language))


def init(language: str) -> None:
    """Rule 3: an empty catalog for ``language``, one of the platform's languages."""
    if language not in LANGUAGES or language == SOURCE_LANGUAGE:
        raise SystemExit(f"not a platform language to translate into: {language!r}")
    if catalog_path(language).exists():
        raise SystemExit(f"{catalog_path(language)} exists already")
    catalog = Catalog(project="Typogram", domain=DOMAIN, locale=language)
    catalog.update(template_catalog(), no_fuzzy_matching=True)
    _write(catalog, catalog_path(language))


def main(argv: list[str]) -> None:
    match argv:
        case ["update"]:
            update()
        case ["init", language]:
            init(language)
        case _:
            raise SystemExit("usage: python -m typogram.mail.i18n update | init <language>")


if __name__ == "__main__":
    main(sys.argv[1:])
