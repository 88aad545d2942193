"""The relational schema as SQLAlchemy Core tables (no ORM).

Migrations in ``typogram/db/migrations`` create these; queries use them.
Times are epoch milliseconds (BIGINT) so SQLite and MySQL agree exactly.
Ids are 32-character hex UUIDs; guests (``guest:…``) never get a row.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.mysql import MEDIUMTEXT as mysql_mediumtext
from sqlalchemy.dialects.mysql import VARCHAR as mysql_varchar

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("username", String(32), nullable=False),
    # Lower-cased copies carry the unique indexes: one rule on SQLite and MySQL.
    Column("username_key", String(32), nullable=False),
    Column("email", String(254), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("display_name", String(64), nullable=False, server_default=""),
    Column("bio", String(500), nullable=False, server_default=""),
    Column("keyboard_layout", String(32), nullable=False, server_default="qwerty"),
    Column("country", String(2), nullable=False, server_default=""),
    Column("role", String(16), nullable=False, server_default="user"),
    Column("token_version", Integer, nullable=False, server_default="0"),
    Column("referral_code", String(12), nullable=False),
    Column("referred_by", String(32), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # The user appears offline to everyone (``presence.query``); migration 0015.
    Column("appear_offline", SmallInteger, nullable=False, server_default="0"),
    # The language the user's mail is written in (``typogram.mail.i18n``); migration 0017.
    Column("language", String(8), nullable=False, server_default="en"),
    Index("ux_users_username_key", "username_key", unique=True),
    Index("ux_users_email", "email", unique=True),
    Index("ux_users_referral_code", "referral_code", unique=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("jti", String(32), primary_key=True),
    Column("user_id", String(32), nullable=False),
    # A family is one login's chain of rotations; reuse of a spent token revokes it.
    Column("family", String(32), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_refresh_tokens_user_id", "user_id"),
    Index("ix_refresh_tokens_family", "family"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("user_id", String(32), nullable=True),
    Column("action", String(32), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("ip", String(45), nullable=False, server_default=""),
    Column("detail", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Who did it, when someone other than ``user_id`` acted (staff); migration 0012.
    Column("actor_id", String(32), nullable=True),
    Index("ix_audit_log_user_created", "user_id", "created_at"),
    Index("ix_audit_log_action_created", "action", "created_at"),
    Index("ix_audit_log_actor_created", "actor_id", "created_at"),
)

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("room_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_chat_messages_room_created", "room_id", "created_at"),
    Index("ix_chat_messages_user_id", "user_id"),
    Index("ix_chat_messages_created_at", "created_at"),
)

# -- chat reports (migration 0015) --

# One row per reported message and reporter (``rooms.chat.report_id``), with a
# copy of the message: a report outlives the message's deletion.
chat_reports = Table(
    "chat_reports",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("room_id", String(64), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("author_id", String(64), nullable=False),
    Column("author_name", String(64), nullable=False, server_default=""),
    Column("text", Text, nullable=False),
    Column("sent_at", BigInteger, nullable=False),
    Column("reporter_id", String(64), nullable=False),
    Column("reason", String(200), nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("created_at", BigInteger, nullable=False),
    Column("reviewed_by", String(32), nullable=True),
    Column("reviewed_at", BigInteger, nullable=True),
    Column("note", String(500), nullable=False, server_default=""),
    Index("ix_chat_reports_status_created", "status", "created_at", "id"),
    Index("ix_chat_reports_message_id", "message_id"),
)

# -- typing tests and results --

# Partitioned monthly on MySQL (migration 0002): the primary key carries the
# partition column, and no other unique index may exist on this table.
test_results = Table(
    "test_results",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", BigInteger, primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("test_id", String(32), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("word_count", Integer, nullable=True),
    Column("seconds", Integer, nullable=True),
    Column("punctuation", SmallInteger, nullable=False, server_default="0"),
    Column("numbers", SmallInteger, nullable=False, server_default="0"),
    Column("difficulty", String(8), nullable=False, server_default="medium"),
    Column("seed", BigInteger, nullable=False),
    Column("category", String(64), nullable=False),
    Column("wpm", Double, nullable=False),
    Column("raw_wpm", Double, nullable=False),
    Column("accuracy", Double, nullable=False),
    Column("consistency", Double, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("chars_correct", Integer, nullable=False),
    Column("chars_incorrect", Integer, nullable=False),
    Column("chars_extra", Integer, nullable=False),
    Column("chars_missed", Integer, nullable=False),
    Column("keystrokes", Integer, nullable=False),
    Column("flagged", SmallInteger, nullable=False, server_default="0"),
    Column("flag_reason", String(255), nullable=False, server_default=""),
    # 0: too little typing to reach a board (migration 0005); stored all the same.
    Column("ranked", SmallInteger, nullable=False, server_default="1"),
    Index("ix_test_results_user_created", "user_id", "created_at"),
    Index("ix_test_results_test_id", "test_id"),
)

personal_bests = Table(
    "personal_bests",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("category", String(64), primary_key=True),
    Column("wpm", Double, nullable=False),
    Column("accuracy", Double, nullable=False),
    Column("result_id", String(32), nullable=False),
    Column("achieved_at", BigInteger, nullable=False),
)

# -- races, ratings, tournaments (migration 0003) --

race_results = Table(
    "race_results",
    metadata,
    Column("id", String(100), primary_key=True),  # "<race_id>:<user_id>": one row per finisher
    Column("race_id", String(32), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("place", Integer, nullable=False),
    Column("wpm", Double, nullable=False),
    # NULL for a racer who did not finish (``finished`` = 0; migration 0006).
    Column("raw_wpm", Double, nullable=True),
    Column("accuracy", Double, nullable=True),
    Column("consistency", Double, nullable=True),
    Column("time_ms", Integer, nullable=True),
    Column("guest", SmallInteger, nullable=False, server_default="0"),
    Column("difficulty", String(8), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("flags", String(255), nullable=False, server_default=""),
    Column("tournament_id", String(32), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("finished", SmallInteger, nullable=False, server_default="1"),
    Index("ix_race_results_race_id", "race_id"),
    Index("ix_race_results_user_id", "user_id"),
    Index("ix_race_results_created_at", "created_at"),
    Index("ix_race_results_user_created", "user_id", "created_at", "id"),
)

user_ratings = Table(
    "user_ratings",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("mu", Double, nullable=False),
    Column("sigma", Double, nullable=False),
    Column("races", Integer, nullable=False, server_default="0"),
    Column("updated_at", BigInteger, nullable=False),
    # mu - 3 sigma, at least 0 (what profiles show); a rank counts the rows above.
    Column("display", Double, nullable=False, server_default="0"),
    Index("ix_user_ratings_display", "display"),
)

# A race is recorded once (its results, ratings and history): this row is written
# in the same transaction, so a replayed race (its ``race.result``) changes nothing.
rated_races = Table(
    "rated_races",
    metadata,
    Column("race_id", String(32), primary_key=True),
    Column("rated_at", BigInteger, nullable=False),
)

# A recorded race (migration 0006): the text its history shows.
races = Table(
    "races",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("text", Text, nullable=True),
    Column("custom", SmallInteger, nullable=False, server_default="0"),
    Column("difficulty", String(8), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("tournament_id", String(32), nullable=True),
    Column("players", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
)

# A user's rating before and after each rated race.
rating_history = Table(
    "rating_history",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("race_id", String(32), primary_key=True),
    Column("mu_before", Double, nullable=False),
    Column("sigma_before", Double, nullable=False),
    Column("display_before", Double, nullable=False),
    Column("mu_after", Double, nullable=False),
    Column("sigma_after", Double, nullable=False),
    Column("display_after", Double, nullable=False),
    Column("races", Integer, nullable=False),  # rated races after this one
    Column("place", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_rating_history_user_created", "user_id", "created_at"),
)

tournaments = Table(
    "tournaments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("title", String(120), nullable=False),
    Column("opens_at", BigInteger, nullable=False),
    Column("starts_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=False),
    Column("max_participants", Integer, nullable=False),
    Column("scoring", String(16), nullable=False),
    Column("points_by_place", String(255), nullable=False),  # JSON list
    Column("allow_guests", SmallInteger, nullable=False, server_default="0"),
    Column("min_rating", Double, nullable=True),
    Column("max_rating", Double, nullable=True),
    # The phase: scheduled, open, running, finished (``rooms.tournament.Phase``).
    Column("status", String(16), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # The state's ``seq`` last written: a writer holding an older one lost a race.
    Column("seq", Integer, nullable=False, server_default="0"),
    Column("grace_ms", Integer, nullable=False, server_default="180000"),
    Column("top_n", Integer, nullable=False, server_default="10"),
    Column("updated_at", BigInteger, nullable=True),
    Column("finished_at", BigInteger, nullable=True),
    Index("ix_tournaments_status", "status"),
    Index("ix_tournaments_starts_at", "starts_at"),
)

tournament_participants = Table(
    "tournament_participants",
    metadata,
    Column("tournament_id", String(32), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("status", String(16), nullable=False, server_default="joined"),
    Column("joined_at", BigInteger, nullable=False),
    Column("guest", SmallInteger, nullable=False, server_default="0"),
    Column("score", Double, nullable=False, server_default="0"),
    Column("races", Integer, nullable=False, server_default="0"),
    Column("achieved_at", BigInteger, nullable=True),
    Column("final_rank", Integer, nullable=True),  # set when the tournament finishes
    Index("ix_tournament_participants_tournament_id", "tournament_id"),
    Index("ix_tournament_participants_user_id", "user_id"),
    Index("ix_tournament_participants_status", "status"),
)

# The races a tournament counted (``TournamentState.counted_races``).
tournament_races = Table(
    "tournament_races",
    metadata,
    Column("tournament_id", String(32), primary_key=True),
    Column("race_id", String(32), primary_key=True),
    Column("counted_at", BigInteger, nullable=False),
)

# -- results pipeline, analytics, challenges, achievements (migration 0004) --

# Typed characters are compared byte for byte on MySQL ("a" and "A" are two keys).
_Char = String(8).with_variant(mysql_varchar(8, collation="utf8mb4_bin"), "mysql")

user_stats = Table(
    "user_stats",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("tests", Integer, nullable=False, server_default="0"),
    Column("flagged", Integer, nullable=False, server_default="0"),
    Column("total_time_ms", BigInteger, nullable=False, server_default="0"),
    Column("total_chars", BigInteger, nullable=False, server_default="0"),
    Column("best_wpm", Double, nullable=False, server_default="0"),
    Column("wpm_sum", Double, nullable=False, server_default="0"),
    Column("accuracy_sum", Double, nullable=False, server_default="0"),
    Column("last_test_at", BigInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# One row per result applied to ``user_stats``: written in the same transaction,
# so a replayed ``result.accepted`` changes nothing.
applied_results = Table(
    "applied_results",
    metadata,
    Column("result_id", String(32), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_applied_results_created_at", "created_at"),
)

user_key_stats = Table(
    "user_key_stats",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("key", _Char, primary_key=True),
    Column("hits", Integer, nullable=False),
    Column("misses", Integer, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("latency_ms", Double, nullable=False),  # EWMA of each test's mean latency
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

user_bigram_stats = Table(
    "user_bigram_stats",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("bigram", _Char, primary_key=True),
    Column("samples", Integer, nullable=False),
    Column("latency_ms", Double, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

user_confusions = Table(
    "user_confusions",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("expected", _Char, primary_key=True),
    Column("pressed", _Char, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# One row per analysed result (also the analytics worker's "applied" marker).
user_trend = Table(
    "user_trend",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("result_id", String(32), primary_key=True),
    Column("wpm", Double, nullable=False),
    Column("accuracy", Double, nullable=False),
    Column("consistency", Double, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_user_trend_user_created", "user_id", "created_at"),
)

# Partitioned monthly on MySQL like ``test_results``: the primary key carries created_at.
challenge_attempts = Table(
    "challenge_attempts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", BigInteger, primary_key=True),
    Column("challenge_id", String(10), nullable=False),  # the UTC date, 2026-11-26
    Column("user_id", String(32), nullable=False),
    Column("wpm", Double, nullable=False),
    Column("raw_wpm", Double, nullable=False),
    Column("accuracy", Double, nullable=False),
    Column("consistency", Double, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("flagged", SmallInteger, nullable=False, server_default="0"),
    Index("ix_challenge_attempts_user_created", "user_id", "created_at"),
    Index("ix_challenge_attempts_challenge", "challenge_id"),
)

challenge_streaks = Table(
    "challenge_streaks",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("last_date", String(10), nullable=False),
    Column("current", Integer, nullable=False),
    Column("best", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Partitioned by KEY(user_id) into 4 on MySQL: the primary key starts with user_id.
user_achievements = Table(
    "user_achievements",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("achievement_id", String(32), primary_key=True),
    Column("unlocked_at", BigInteger, nullable=False),
)

# The facts the achievement rules count (JSON), one row per user.
achievement_progress = Table(
    "achievement_progress",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("facts", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Events the achievements worker has applied (same transaction as their effect).
achievement_events_seen = Table(
    "achievement_events_seen",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

# -- courses, lessons, enrolments, subscriptions (migration 0009) --

# Full-text search over title and description: a FULLTEXT index on MySQL, an
# FTS5 table ``courses_fts`` kept in step by triggers on SQLite (the migration).
courses = Table(
    "courses",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("slug", String(64), nullable=False),
    Column("title", String(120), nullable=False),
    Column("description", Text, nullable=False),
    Column("language", String(8), nullable=False),
    Column("level", String(16), nullable=False),
    Column("tags", String(400), nullable=False, server_default=""),  # ",tag,other,"
    Column("cover_color", String(7), nullable=False, server_default="#3b82f6"),
    Column("cover_url", String(500), nullable=False, server_default=""),
    Column("premium", SmallInteger, nullable=False, server_default="0"),
    Column("published", SmallInteger, nullable=False, server_default="0"),
    Column("position", Integer, nullable=False, server_default="100"),
    Column("lesson_count", Integer, nullable=False, server_default="0"),
    Column("created_by", String(32), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ux_courses_slug", "slug", unique=True),
    Index("ix_courses_published_position", "published", "position", "slug"),
    Index("ix_courses_language", "language"),
    Index("ix_courses_level", "level"),
)

course_lessons = Table(
    "course_lessons",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("course_id", String(32), nullable=False),
    Column("position", Integer, nullable=False),  # 1, 2, … : the lesson's number
    Column("title", String(120), nullable=False),
    Column("instructions", Text, nullable=False),
    Column("source", Text, nullable=False),  # JSON: typogram.courses.model.Source
    Column("goal_wpm", Double, nullable=False),
    Column("goal_accuracy", Double, nullable=False),
    Column("goal_seconds", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_course_lessons_course_position", "course_id", "position"),
)

# Partitioned by KEY(user_id) into 4 on MySQL: the primary key starts with user_id
# (and serves the user_id index the strategy lists).
user_typing_courses = Table(
    "user_typing_courses",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("course_id", String(32), primary_key=True),
    Column("id", String(32), nullable=False),
    Column("enrolled_at", BigInteger, nullable=False),
    Column("last_activity_at", BigInteger, nullable=False),
    Column("completed_at", BigInteger, nullable=True),
    # Premium courses: the end of the subscription's paid period (NULL: free course).
    Column("expires_at", BigInteger, nullable=True),
    Index("ix_user_typing_courses_course_id", "course_id"),
    Index("ix_user_typing_courses_expires_at", "expires_at"),
)

user_lesson_progress = Table(
    "user_lesson_progress",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("lesson_id", String(32), primary_key=True),
    Column("course_id", String(32), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("best_wpm", Double, nullable=False, server_default="0"),
    Column("best_accuracy", Double, nullable=False, server_default="0"),
    Column("completed_at", BigInteger, nullable=True),
    Column("completed_by", String(32), nullable=True),  # the result that met the goal
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_user_lesson_progress_user_course", "user_id", "course_id"),
)

# One row per issued lesson test: who may complete which lesson with it, under which
# goal; ``result_id`` is set once its result has been applied (exactly once).
lesson_tests = Table(
    "lesson_tests",
    metadata,
    Column("test_id", String(32), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("course_id", String(32), nullable=False),
    Column("lesson_id", String(32), nullable=False),
    Column("goal", String(200), nullable=False),  # JSON: the goal when issued
    Column("issued_at", BigInteger, nullable=False),
    Column("result_id", String(32), nullable=True),
    Index("ix_lesson_tests_issued_at", "issued_at"),
)

plans = Table(
    "plans",
    metadata,
    Column("id", String(32), primary_key=True),  # a slug: "monthly"
    Column("name", String(64), nullable=False),
    Column("description", String(500), nullable=False, server_default=""),
    Column("price_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("interval", String(8), nullable=False),  # month | year
    Column("interval_count", Integer, nullable=False, server_default="1"),
    Column("active", SmallInteger, nullable=False, server_default="1"),
    Column("position", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("plan_id", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("current_period_start", BigInteger, nullable=False),
    Column("current_period_end", BigInteger, nullable=False),
    Column("cancel_at_period_end", SmallInteger, nullable=False, server_default="0"),
    Column("cancelled_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ux_subscriptions_user_id", "user_id", unique=True),
    Index("ix_subscriptions_status_end", "status", "current_period_end"),
)

# Every change of a subscription; ``reference`` (a payment id, a staff request id)
# is unique, so the same payment applied twice changes nothing.
subscription_history = Table(
    "subscription_history",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("subscription_id", String(32), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("action", String(16), nullable=False),
    Column("reference", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("plan_id", String(32), nullable=False),
    Column("period_end", BigInteger, nullable=False),
    Column("actor", String(32), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Index("ux_subscription_history_reference", "reference", unique=True),
    Index("ix_subscription_history_user_created", "user_id", "created_at"),
)

# -- integrity: the review queue of flagged results (migration 0005) --

# One row per flagged result, race finish or challenge attempt (``kind``), kept
# off the boards until staff approve it. ``boards`` holds the entries approval
# raises (JSON ``[[board, wpm, at_ms], ...]``), ``evidence`` what the checks saw.
flag_reviews = Table(
    "flag_reviews",
    metadata,
    Column("id", String(32), primary_key=True),  # derived from kind and subject
    Column("kind", String(16), nullable=False),  # result | race | challenge
    Column("subject_id", String(100), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("reasons", String(255), nullable=False, server_default=""),
    Column("message", String(500), nullable=False, server_default=""),
    Column("evidence", Text, nullable=False),
    Column("boards", Text, nullable=False),
    Column("wpm", Double, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("reviewed_by", String(32), nullable=True),
    Column("reviewed_at", BigInteger, nullable=True),
    Column("note", String(500), nullable=False, server_default=""),
    Index("ix_flag_reviews_status_created", "status", "created_at", "id"),
    Index("ix_flag_reviews_user_id", "user_id"),
)

# -- payments and coupons (migration 0011) --

# Partitioned monthly on MySQL (like ``test_results``): the primary key carries
# ``created_at`` and no other unique index may exist here, so what must be unique
# lives in the tables below (webhook events, checkout keys, redemptions).
payments = Table(
    "payments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", BigInteger, primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("order_id", String(32), nullable=False),  # the checkout that made it
    Column("plan_id", String(32), nullable=False),
    Column("list_amount", BigInteger, nullable=False),  # minor units
    Column("discount", BigInteger, nullable=False, server_default="0"),
    Column("amount", BigInteger, nullable=False),  # charged: list_amount - discount
    Column("currency", String(3), nullable=False),
    Column("coupon_id", String(32), nullable=True),
    Column("coupon_code", String(32), nullable=True),
    Column("status", String(16), nullable=False),  # typogram.payments.machine.Status
    Column("provider", String(16), nullable=False),
    Column("provider_payment_id", String(255), nullable=True),  # set once the provider made it
    Column("provider_intent_id", String(255), nullable=True),  # learned from its webhooks
    Column("redirect_url", String(1000), nullable=False, server_default=""),
    Column("failure_reason", String(255), nullable=False, server_default=""),
    Column("credited_at", BigInteger, nullable=True),  # the subscription was credited
    Column("refund_requested_at", BigInteger, nullable=True),
    Column("refund_settled_at", BigInteger, nullable=True),  # refund policy applied
    Column("announced", String(16), nullable=True),  # last status published
    Column("succeeded_at", BigInteger, nullable=True),
    Column("failed_at", BigInteger, nullable=True),
    Column("refunded_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_payments_user_created", "user_id", "created_at"),
    Index("ix_payments_order_id", "order_id"),
    Index("ix_payments_status", "status", "updated_at"),
    Index("ix_payments_provider_payment", "provider", "provider_payment_id"),
    Index("ix_payments_provider_intent", "provider", "provider_intent_id"),
)

# Every verified provider event, stored once: the primary key refuses a second
# delivery. It is also the outbox: ``published_at`` is set once the event is on
# ``payment-events``; the payments worker publishes what stayed unpublished.
payment_webhook_events = Table(
    "payment_webhook_events",
    metadata,
    Column("provider", String(16), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("payment_id", String(32), nullable=False),
    Column("created", BigInteger, nullable=False),  # the provider's, unix s
    Column("body", Text, nullable=False),  # as received (verified)
    Column("received_at", BigInteger, nullable=False),
    Column("published_at", BigInteger, nullable=True),
    Index("ix_payment_webhook_events_payment", "payment_id"),
    Index("ix_payment_webhook_events_unpublished", "published_at", "received_at"),
)

# One row per ``Idempotency-Key`` of a user's checkout: the same key answers the
# same payment; ``response`` is the first answer, replayed.
checkout_requests = Table(
    "checkout_requests",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("idempotency_key", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("payment_id", String(32), nullable=False),
    Column("payment_created_at", BigInteger, nullable=False),
    Column("response", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_checkout_requests_created_at", "created_at"),
)

coupons = Table(
    "coupons",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("code", String(32), nullable=False),  # upper-case
    Column("kind", String(8), nullable=False),  # percent | fixed
    Column("percent_off", Integer, nullable=True),
    Column("amount_off", BigInteger, nullable=True),  # minor units
    Column("currency", String(3), nullable=True),
    Column("valid_from", BigInteger, nullable=True),
    Column("valid_until", BigInteger, nullable=True),
    Column("max_redemptions", Integer, nullable=True),
    Column("max_per_user", Integer, nullable=True),
    Column("plans", String(400), nullable=False, server_default=""),  # ",monthly,yearly,"
    Column("active", SmallInteger, nullable=False, server_default="1"),
    # Held and redeemed redemptions: raised only by a conditional UPDATE that checks
    # the limit in the same statement, lowered when a held one is released.
    Column("redeemed_count", Integer, nullable=False, server_default="0"),
    Column("created_by", String(32), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ux_coupons_code", "code", unique=True),
)

# A user's held and redeemed redemptions of one coupon (the per-user limit's counter).
coupon_user_counts = Table(
    "coupon_user_counts",
    metadata,
    Column("coupon_id", String(32), primary_key=True),
    Column("user_id", String(32), primary_key=True),
    Column("count", Integer, nullable=False, server_default="0"),
    Column("updated_at", BigInteger, nullable=False),
)

# One per payment that used a coupon: held at checkout, redeemed when it succeeds,
# released (the counters lowered) when it fails.
coupon_redemptions = Table(
    "coupon_redemptions",
    metadata,
    Column("payment_id", String(32), primary_key=True),
    Column("coupon_id", String(32), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # held | redeemed | released
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_coupon_redemptions_coupon", "coupon_id", "status"),
    Index("ix_coupon_redemptions_user", "user_id"),
)

# -- the blog and staff tools (migration 0012) --

# Bodies up to 60,000 characters: MEDIUMTEXT on MySQL (TEXT holds 65,535 bytes).
LongText = Text().with_variant(mysql_mediumtext(), "mysql")

# Full-text search over title and body text: a FULLTEXT index on MySQL, an FTS5
# table ``blog_posts_fts`` kept in step by triggers on SQLite (the migration).
blog_posts = Table(
    "blog_posts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("slug", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("excerpt", String(500), nullable=False, server_default=""),
    Column("excerpt_given", SmallInteger, nullable=False, server_default="0"),
    Column("body_markdown", LongText, nullable=False),
    Column("body_html", LongText, nullable=False),  # rendered and sanitised once, on write
    Column("body_text", LongText, nullable=False),  # plain text: what search indexes
    Column("cover_url", String(500), nullable=False, server_default=""),
    Column("tags", String(400), nullable=False, server_default=""),  # ",tag,other,"
    Column("language", String(8), nullable=False),
    Column("author_id", String(32), nullable=False),
    Column("is_published", SmallInteger, nullable=False, server_default="0"),
    Column("published_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ux_blog_posts_slug", "slug", unique=True),
    Index("ix_blog_posts_published", "is_published", "published_at", "id"),
    Index("ix_blog_posts_published_at", "published_at"),
    Index("ix_blog_posts_author_id", "author_id"),
)

blog_post_tags = Table(
    "blog_post_tags",
    metadata,
    Column("tag", String(32), primary_key=True),
    Column("post_id", String(32), primary_key=True),
    Index("ix_blog_post_tags_post_id", "post_id"),
)

# An old slug of a post: its pages answer with a permanent redirect to the current one.
blog_slug_redirects = Table(
    "blog_slug_redirects",
    metadata,
    Column("slug", String(64), primary_key=True),
    Column("post_id", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_blog_slug_redirects_post_id", "post_id"),
)

# Every ban: the one in force has ``lifted_at`` NULL and ``ends_at`` NULL (until lifted)
# or in the future.
user_bans = Table(
    "user_bans",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("ends_at", BigInteger, nullable=True),
    Column("created_by", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("lifted_at", BigInteger, nullable=True),
    Column("lifted_by", String(32), nullable=True),
    Column("lift_reason", String(500), nullable=False, server_default=""),
    Index("ix_user_bans_user_lifted", "user_id", "lifted_at"),
    Index("ix_user_bans_created_at", "created_at"),
)

# Login sessions revoked alone (``typogram.revocation``), kept while a token of them
# may still be alive; ``sid`` is the session's refresh family. Migration 0013.
revoked_sessions = Table(
    "revoked_sessions",
    metadata,
    Column("sid", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("revoked_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_revoked_sessions_user_expires", "user_id", "expires_at"),
)

# -- e-mail (migration 0016; typogram/mail) --

# Partitioned monthly on MySQL (like ``payments``): ``created_at`` (when the message
# was queued) is part of the primary key, and the event carries it to the worker.
email_history = Table(
    "email_history",
    metadata,
    Column("id", String(32), primary_key=True),  # the message id (also in Message-ID)
    Column("created_at", BigInteger, primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("email_type", String(32), nullable=False),  # typogram.mail.catalog.KINDS
    Column("address", String(254), nullable=False),
    Column("status", String(16), nullable=False),  # typogram.mail.history.Status
    Column("provider", String(16), nullable=False, server_default=""),
    Column("provider_message_id", String(255), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", String(255), nullable=False, server_default=""),
    Column("sent_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_email_history_user_created", "user_id", "created_at"),
    Index("ix_email_history_type_created", "email_type", "created_at"),
    Index("ix_email_history_sent_at", "sent_at"),
    Index("ix_email_history_provider_message", "provider_message_id"),
)

# Verification and password-reset tokens: only a SHA-256 of the token is kept.
email_tokens = Table(
    "email_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("purpose", String(16), nullable=False),  # verify | reset
    Column("email", String(254), nullable=False),  # the address the token was sent to
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_email_tokens_user_purpose", "user_id", "purpose"),
    Index("ix_email_tokens_expires_at", "expires_at"),
)

# What a user chose per category; a category without a row has its default.
email_preferences = Table(
    "email_preferences",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("category", String(32), primary_key=True),
    Column("enabled", SmallInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Addresses that bounced hard or complained: no more non-security mail (no mail
# at all after a hard bounce).
email_suppressions = Table(
    "email_suppressions",
    metadata,
    Column("address", String(254), primary_key=True),
    Column("reason", String(16), nullable=False),  # bounced | complained
    Column("message_id", String(32), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
)

# A user's address is verified while ``verified_email`` equals ``users.email`` and no
# change waits in ``pending_email``.
email_addresses = Table(
    "email_addresses",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("verified_email", String(254), nullable=True),
    Column("verified_at", BigInteger, nullable=True),
    Column("pending_email", String(254), nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)
