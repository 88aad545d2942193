"""Templates to a MIME message: a text and an HTML part, one layout, headers that cannot
be injected into.

Rules:

1. Templates live in ``templates/``: ``<kind>.txt`` and ``<kind>.html``, each
   extending ``layout.txt`` / ``layout.html``. HTML is autoescaped, so a
   display name like ``<script>`` arrives as text. A template that names a
   value the message lacks fails (``StrictUndefined``), never renders blank.
2. Header values built from user data (the subject, the recipient's name)
   are flattened to one line first: every control character (CR and LF
   included), line and paragraph separator becomes a space. The recipient's
   address goes through ``email.headerregistry.Address``, which refuses
   anything that is not one address; such a message can never go
   (``PermanentMailError``).
3. ``Message-ID`` is ``<message id@domain>``: the same message rendered
   again (a retry) has the same id, so a receiving server can tell.
4. Non-security messages carry ``List-Unsubscribe`` (an ``https`` link for
   their category) and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
   (RFC 8058); security messages carry neither.
5. A letter is written in its ``language`` (``typogram.mail.i18n``): the
   subject and every text of the templates are translated, the HTML part's
   ``lang`` names the language used, and a language without a catalog (or a
   string its catalog lacks) reads in English. A translated text is trusted
   markup; the values placed into it are escaped as anywhere else.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

import jinja2

from typogram.mail import i18n
from typogram.mail.catalog import kind_of
from typogram.mail.port import PermanentMailError

SUBJECT_MAX = 200
NAME_MAX = 64
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(value: str, limit: int) -> str:
    """Rule 2: ``value`` as one header-safe line of at most ``limit`` characters."""
    return " ".join(_UNSAFE.sub(" ", value).split())[:limit]


@dataclass(frozen=True, slots=True)
class Letter:
    """One message to render: who gets which kind, with what values."""

    message_id: str
    kind: str
    to: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    unsubscribe_url: str | None = None
    language: str = i18n.SOURCE_LANGUAGE  # the user's; English where it has no catalog


@functools.cache
def _environments(language: str) -> tuple[jinja2.Environment, jinja2.Environment]:
    """The text and the HTML environment for ``language`` (rule 5), made once per process:
    each compiles a template once and keeps it."""
    environments = (i18n.environment(autoescape=False), i18n.environment(autoescape=True))
    for env in environments:
        env.install_gettext_translations(i18n.translations(language))  # type: ignore[attr-defined]
    return environments


@functools.cache
def _subject(language: str, source: str) -> jinja2.Template:
    return _environments(language)[0].from_string(source)


class Renderer:
    """Cheap to make (the compiled templates are shared); ``render`` is pure."""

    def __init__(self, *, sender: str, site_url: str, message_id_domain: str = "") -> None:
        self._sender = sender
        self._site_url = site_url
        self._domain = message_id_domain or parseaddr(sender)[1].rpartition("@")[2] or "localhost"

    def message_id(self, message_id: str) -> str:
        return f"<{message_id}@{self._domain}>"

    def render(self, letter: Letter) -> EmailMessage:
        """The finished message; raises ``PermanentMailError`` for an address that cannot
        be written, ``jinja2.UndefinedError`` for a letter missing a value."""
        kind = kind_of(letter.kind)
        language = i18n.mail_language(letter.language)
        text_env, html_env = _environments(language)
        name = one_line(letter.name, NAME_MAX)
        unsubscribe = None if kind.security else letter.unsubscribe_url
        values = {
            **letter.params,
            "name": name,
            "site_url": self._site_url,
            "unsubscribe_url": unsubscribe,
            "lang": language,
        }
        subject = one_line(_subject(language, kind.subject).render(values), SUBJECT_MAX)
        values["subject"] = subject
        text = text_env.get_template(f"{kind.name}.txt").render(values)
        html = html_env.get_template(f"{kind.name}.html").render(values)
        message = EmailMessage()
        try:
            message["To"] = Address(display_name=name, addr_spec=letter.to)
        except (ValueError, IndexError, TypeError) as exc:
            raise PermanentMailError(f"not an address: {letter.to!r}") from exc
        message["From"] = self._sender
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = self.message_id(letter.message_id)
        message["Auto-Submitted"] = "auto-generated"
        if unsubscribe is not None:
            message["List-Unsubscribe"] = f"<{unsubscribe}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message
