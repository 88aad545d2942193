"""``achievements`` group (``achievement-events``, ``race-events``): the rules engine.

Each event becomes a fact (``typogram.achievements``): ``achievement.test``
→ ``TestDone``, ``achievement.challenge_streak`` → ``ChallengeStreak``,
``achievement.course`` → ``CourseCompleted``, a race finish in first place
(``race.finished``, read by ``typogram.race_events``; rated: not a guest, not
flagged, not on a custom text) → ``RaceWon``. The events of a batch
(``workers.runtime``; a retry is a batch of one) are applied in one transaction: their ids go into
``achievement_events_seen`` (an event seen before, or repeated inside the
batch, counts once), each user's progress row is created when missing and
locked (users in sorted order), their facts are folded in event order and
saved, and every achievement they now reach and the user lacks is inserted into
``user_achievements`` (primary key ``(user_id, achievement_id)``: unlocked
exactly once). Facts never go backwards, so what the folded facts reach is
what the events would have unlocked one after another. Two workers with
facts of the same user (say, a test on ``achievement-events`` and a race win
on ``race-events``) therefore take turns on that row: the second reads what
the first saved and unlocked, and neither's facts are lost. A concurrent delivery
that got there first (a key clash) rolls the batch back; its events are then
applied one by one, each re-run once, so the one that clashed finds itself
seen and the others still count. After the commit the users' cached
achievements are dropped and each unlock is pushed to the user's connections
on ``keys.channel_user`` as ``achievement.unlocked`` and mailed to users who
turned achievement mail on (``typogram.mail``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from typogram import achievements as rules
from typogram import keys, race_events, topics
from typogram.db.schema import achievement_events_seen, achievement_progress, user_achievements
from typogram.logs import get_logger
from typogram.mail.services import account_mail_of
from typogram.ports import Event
from typogram.protocol import push_payload
from workers.runtime import Group

if TYPE_CHECKING:
    from typogram.platform import Platform

UNLOCKED = "achievement.unlocked"
CLASH_RERUNS = 1  # an event alone is run again this often after a key clash
log = get_logger("typogram.workers.achievements")

# event id -> (user id, fact), in event order.
_Facts = dict[str, tuple[str, rules.Fact]]
# user id -> what the user unlocked.
_Unlocks = dict[str, list[rules.Achievement]]


def fact_of(event: Event) -> tuple[str, rules.Fact] | None:
    """The user and fact an event carries, or None when it carries none."""
    d = event.data
    if event.type == topics.ACHIEVEMENT_TEST:
        fact: rules.Fact = rules.TestDone(
            float(d["wpm"]), float(d["accuracy"]), str(d.get("lang", ""))[:8]
        )
        return str(d["user_id"]), fact
    if event.type == topics.ACHIEVEMENT_CHALLENGE_STREAK:
        return str(d["user_id"]), rules.ChallengeStreak(int(d["days"]))
    if event.type == topics.ACHIEVEMENT_COURSE:
        return str(d["user_id"]), rules.CourseCompleted()
    if race_events.kind_of(event) == race_events.FINISH and d.get("place") == 1:
        if d.get("guest") or d.get("flags") or d.get("rated") is False or not d.get("user"):
            return None
        return str(d["user"]), rules.RaceWon()
    return None


async def handle(platform: Platform, topic: str, event: Event) -> None:
    await handle_batch(platform, topic, [event])


async def handle_batch(platform: Platform, topic: str, events: Sequence[Event]) -> None:
    facts: _Facts = {}
    for event in events:
        found = fact_of(event)
        if found is not None and len(found[0]) <= 32:  # longer: not a registered user's id
            facts.setdefault(event.id[:64], found)
    if not facts:
        return
    now = int(time.time() * 1000)
    try:
        unlocked = await _apply(platform, facts, now)
    except IntegrityError:
        unlocked = {}
        for event_id, found in facts.items():
            unlocked.update(await _apply_alone(platform, event_id, found, now))
    await _announce(platform, unlocked, now)


async def _apply_alone(
    platform: Platform, event_id: str, found: tuple[str, rules.Fact], now: int
) -> _Unlocks:
    """One event in its own transaction, run again after a key clash: the rerun finds
    the event seen if a concurrent delivery applied it, or applies it on top of the
    concurrent unlock it clashed with."""
    for _ in range(1 + CLASH_RERUNS):
        try:
            return await _apply(platform, {event_id: found}, now)
        except IntegrityError:
            continue
    return {}  # still clashing: leave it to the concurrent delivery, as before batches


async def _apply(platform: Platform, facts: _Facts, now: int) -> _Unlocks:
    """One transaction; returns every user whose facts changed, with their unlocks."""
    async with platform.db.write() as conn:
        seen = {row[0] for row in await conn.execute(_SEEN_AMONG, {"ids": list(facts)})}
        facts = {e: f for e, f in facts.items() if e not in seen}
        if not facts:
            return {}
        await conn.execute(_SEEN_INSERT, [{"event_id": e, "created_at": now} for e in facts])
        # Each user's progress row, created blank when missing and locked either way
        # (sorted: one lock order for every worker): a concurrent worker with facts of
        # the same user waits here for this commit instead of reading the same facts.
        users = sorted({user for user, _ in facts.values()})
        claim = _PROGRESS_ROW_MYSQL if conn.dialect.name == "mysql" else _PROGRESS_ROW_SQLITE
        await conn.execute(claim, [{"user_id": u, "facts": "{}", "updated_at": now} for u in users])
        after = {
            user: rules.Facts.from_json(orjson.loads(doc))
            for user, doc in await conn.execute(_PROGRESS_OF, {"users": users})
        }
        for user, fact in facts.values():  # in event order
            after[user] = rules.observe(after.get(user) or rules.Facts(), fact)
        upsert = _PROGRESS_UPSERT_MYSQL if conn.dialect.name == "mysql" else _PROGRESS_UPSERT_SQLITE
        await conn.execute(
            upsert,
            [{"user_id": user, "facts": orjson.dumps(f.to_json()).decode(), "updated_at": now}
             for user, f in after.items()],
        )  # fmt: skip
        have = {(user, a) for user, a in await conn.execute(_UNLOCKED_OF, {"users": users})}
        unlocked: _Unlocks = {
            user: [a for a in rules.earned(f) if (user, a.id) not in have]
            for user, f in after.items()
        }
        rows = [
            {"user_id": user, "achievement_id": a.id, "unlocked_at": now}
            for user, reached in unlocked.items()
            for a in reached
        ]
        if rows:
            await conn.execute(_UNLOCK_INSERT, rows)
    return unlocked


def _progress_upsert(dialect: str) -> Any:
    p = achievement_progress
    if dialect == "mysql":
        mysql = mysql_insert(p)
        return mysql.on_duplicate_key_update(
            facts=mysql.inserted.facts, updated_at=mysql.inserted.updated_at
        )
    lite = sqlite_insert(p)
    return lite.on_conflict_do_update(
        index_elements=[p.c.user_id],
        set_={"facts": lite.excluded.facts, "updated_at": lite.excluded.updated_at},
    )


# Built once (building a statement per event costs more than the round trip it saves).
_SEEN_AMONG = select(achievement_events_seen.c.event_id).where(
    achievement_events_seen.c.event_id.in_(bindparam("ids", expanding=True))
)
_SEEN_INSERT = achievement_events_seen.insert()
# Locking reads (MySQL; SQLite has one writer at a time anyway): they see what a
# concurrent worker committed while this transaction waited for the row, not the
# transaction's older snapshot.
_PROGRESS_OF = (
    select(achievement_progress.c.user_id, achievement_progress.c.facts)
    .where(achievement_progress.c.user_id.in_(bindparam("users", expanding=True)))
    .with_for_update()
)
_PROGRESS_ROW_MYSQL = mysql_insert(achievement_progress).on_duplicate_key_update(
    user_id=achievement_progress.c.user_id
)
_PROGRESS_ROW_SQLITE = sqlite_insert(achievement_progress).on_conflict_do_nothing()
_PROGRESS_UPSERT_MYSQL = _progress_upsert("mysql")
_PROGRESS_UPSERT_SQLITE = _progress_upsert("sqlite")
_UNLOCKED_OF = (
    select(user_achievements.c.user_id, user_achievements.c.achievement_id)
    .where(user_achievements.c.user_id.in_(bindparam("users", expanding=True)))
    .with_for_update(read=True)
)
_UNLOCK_INSERT = user_achievements.insert()


async def _announce(platform: Platform, unlocked: _Unlocks, now: int) -> None:
    if not unlocked:
        return
    await platform.cache.delete(
        *(
            key
            for user_id in unlocked
            for key in (keys.achievements_unlocked(user_id), keys.achievements_progress(user_id))
        )
    )
    for user_id, reached in unlocked.items():
        for achievement in reached:
            message = push_payload(
                UNLOCKED, {"id": achievement.id, "title": achievement.title, "unlocked_at": now}
            )
            try:
                await platform.pubsub.publish(keys.channel_user(user_id), message)
            except Exception:  # the unlock is stored; a missed push only delays the news
                log.exception("achievement push failed", extra={"user_id": user_id})
            try:  # mail for who opted in (the category is off by default)
                await account_mail_of(platform).notify(
                    "achievement_unlocked",
                    user_id,
                    {"title": achievement.title, "description": achievement.description},
                )
            except Exception:  # the unlock is stored; the mail is a courtesy
                log.exception("achievement mail failed", extra={"user_id": user_id})


GROUP = Group(
    name="achievements",
    topics=(topics.ACHIEVEMENT_EVENTS, topics.RACE_EVENTS),
    handle=handle,
    handle_batch=handle_batch,
)
