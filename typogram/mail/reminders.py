"""Scheduled notices: "tournament starting soon" for entrants and the daily-challenge
streak reminder (opt-in), made by the ``email`` group's periodic job.

Rules:

1. A tournament still ``scheduled`` or ``open`` that starts within
   ``lead_ms`` gets one notice per registered entrant (guests have no
   address), identified by (tournament, user): a later run finds it made.
2. A user who turned streak reminders on, whose streak (two days or more)
   last grew yesterday (UTC) and who has not played today, gets one
   reminder per day, identified by (user, day).
3. Safe in several processes at once and after a crash: the identities
   make every notice once (``outbox`` rule 3).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import and_, select

from typogram.db.schema import (
    challenge_streaks,
    email_preferences,
    tournament_participants,
    tournaments,
)
from typogram.mail.catalog import Category
from typogram.mail.notices import once

if TYPE_CHECKING:
    from typogram.db.database import Database
    from typogram.mail.account_mail import AccountMail

DAY_MS = 86_400_000


def _clock(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


async def tournament_notices(
    db: Database, mail: AccountMail, *, now_ms: int, lead_ms: int, site_url: str
) -> int:
    """Rule 1; how many notices were queued (or queued again, not yet sent)."""
    t, p = tournaments.c, tournament_participants.c
    statement = (
        select(t.id, t.title, t.starts_at, p.user_id)
        .select_from(tournaments.join(tournament_participants, p.tournament_id == t.id))
        .where(
            t.status.in_(("scheduled", "open")),
            t.starts_at > now_ms,
            t.starts_at <= now_ms + lead_ms,
            p.guest == 0,
        )
    )
    async with db.read(primary=True) as conn:
        rows = (await conn.execute(statement)).all()
    queued = 0
    for tournament_id, title, starts_at, user_id in rows:
        source = f"tournament:{tournament_id}:{user_id}"
        made = await mail.notify(
            "tournament_starting",
            str(user_id),
            {
                "tournament": title,
                "starts_at": _clock(int(starts_at)),
                "link": f"{site_url}/#/lobby?tournament={tournament_id}",
            },
            **once(source, "tournament_starting", int(starts_at) - lead_ms),
        )
        queued += made is not None
    return queued


async def streak_reminders(db: Database, mail: AccountMail, *, now_ms: int) -> int:
    """Rule 2; how many reminders were queued (or queued again, not yet sent)."""
    today = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC).date()
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    s, e = challenge_streaks.c, email_preferences.c
    statement = (
        select(s.user_id, s.current)
        .select_from(
            challenge_streaks.join(
                email_preferences,
                and_(e.user_id == s.user_id, e.category == Category.STREAK_REMINDERS.value),
            )
        )
        .where(e.enabled == 1, s.last_date == yesterday, s.current >= 2)
    )
    async with db.read(primary=True) as conn:
        rows = (await conn.execute(statement)).all()
    day_start = now_ms - now_ms % DAY_MS
    queued = 0
    for user_id, current in rows:
        made = await mail.notify(
            "streak_reminder",
            str(user_id),
            {"days": int(current)},
            **once(f"streak:{user_id}:{today.isoformat()}", "streak_reminder", day_start),
        )
        queued += made is not None
    return queued
