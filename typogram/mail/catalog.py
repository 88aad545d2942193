"""Every kind of message the platform sends: its template, its category and whether it
is a security message.

Rules:

1. A security message (verification, password reset and change, the notice
   that someone tried to register with an address) always goes: no
   preference, unsubscribe or suppression for a complaint holds it back,
   and it carries no ``List-Unsubscribe`` header. A hard bounce still
   stops it: there is no mailbox to reach.
2. Every other message belongs to one preference category; it goes only
   while the user's preference for that category is on (``DEFAULTS`` until
   they choose), and carries ``List-Unsubscribe`` and
   ``List-Unsubscribe-Post`` (RFC 8058) for that category.
3. A subject, like every text in the templates, is translated
   (``typogram.mail.i18n``): ``_t`` marks it as one message.
4. ``params`` names what a producer must give; the templates use nothing
   else, so a message missing one is malformed (it goes to the DLQ).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    """What a user can turn on and off (``GET/PATCH /api/v1/users/me/email-preferences``)."""

    ANNOUNCEMENTS = "announcements"
    BILLING = "billing"
    TOURNAMENTS = "tournaments"
    ACHIEVEMENTS = "achievements"
    STREAK_REMINDERS = "streak_reminders"


# Achievements and streak reminders are opt-in; the rest are on until turned off.
DEFAULTS: dict[Category, bool] = {
    Category.ANNOUNCEMENTS: True,
    Category.BILLING: True,
    Category.TOURNAMENTS: True,
    Category.ACHIEVEMENTS: False,
    Category.STREAK_REMINDERS: False,
}


def _t(source: str) -> str:
    """A subject as a Jinja template whose words are one translatable message."""
    return "{% trans %}" + source + "{% endtrans %}"


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    subject: str  # a Jinja template (``_t``); rendered as text, then flattened to one line
    category: Category | None  # None: a security message (rule 1)
    params: tuple[str, ...] = ()

    @property
    def security(self) -> bool:
        return self.category is None


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("welcome", _t("Welcome to Typogram, {{ name }}!"), Category.ANNOUNCEMENTS),
        Kind("verify_email", _t("Confirm your e-mail address"), None, ("link",)),
        Kind("email_taken", _t("Someone tried to use your address on Typogram"), None, ("link",)),
        Kind("password_reset", _t("Reset your Typogram password"), None, ("link", "minutes")),
        Kind("password_changed", _t("Your Typogram password was changed"), None, ("link",)),
        Kind(
            "payment_receipt",
            _t("Your Typogram receipt"),
            Category.BILLING,
            ("amount", "plan", "payment_id"),
        ),
        Kind(
            "subscription_renewed",
            _t("Your Typogram subscription was renewed"),
            Category.BILLING,
            ("plan", "until"),
        ),
        Kind(
            "subscription_expired",
            _t("Your Typogram subscription has ended"),
            Category.BILLING,
            ("plan",),
        ),
        Kind(
            "achievement_unlocked",
            _t("Achievement unlocked: {{ title }}"),
            Category.ACHIEVEMENTS,
            ("title", "description"),
        ),
        Kind(
            "streak_reminder",
            _t("Keep your {{ days }}-day streak going"),
            Category.STREAK_REMINDERS,
            ("days",),
        ),
        Kind(
            "tournament_starting",
            _t("{{ tournament }} starts soon"),
            Category.TOURNAMENTS,
            ("tournament", "starts_at", "link"),
        ),
    )
}


def kind_of(name: str) -> Kind:
    """The kind named ``name``; raises ``ValueError`` for an unknown one."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown e-mail type {name!r}") from None
