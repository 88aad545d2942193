"""Courses, lessons, enrolments, lesson tests, plans and subscriptions; the starter catalog.

MySQL: a ``FULLTEXT`` index over ``courses (title, description)`` and
``user_typing_courses`` partitioned by ``KEY(user_id)`` into 4. SQLite: an
FTS5 table ``courses_fts`` kept in step with ``courses`` by triggers. Both
get the starter catalog and plans of ``typogram.courses.starter``
(``typogram seed-courses`` adds them again where they are missing).

Revision ID: 0009
"""

import time

import sqlalchemy as sa
from alembic import op

from typogram.courses.editing import plan_row, starter_course_row, starter_lesson_rows
from typogram.courses.starter import COURSES, PLANS

revision = "0009"
down_revision = "0004"
branch_labels = None
depends_on = None

ENROLMENT_PARTITIONS = 4


def _times() -> list[sa.Column[int]]:
    return [
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    ]


def upgrade() -> None:
    is_mysql = op.get_bind().dialect.name == "mysql"
    courses = op.create_table(
        "courses",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("tags", sa.String(400), nullable=False, server_default=""),
        sa.Column("cover_color", sa.String(7), nullable=False, server_default="#3b82f6"),
        sa.Column("cover_url", sa.String(500), nullable=False, server_default=""),
        sa.Column("premium", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("published", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("position", sa.Integer, nullable=False, server_default="100"),
        sa.Column("lesson_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_by", sa.String(32), nullable=False, server_default=""),
        *_times(),
        mysql_charset="utf8mb4",
    )
    op.create_index("ux_courses_slug", "courses", ["slug"], unique=True)
    op.create_index("ix_courses_published_position", "courses", ["published", "position", "slug"])
    op.create_index("ix_courses_language", "courses", ["language"])
    op.create_index("ix_courses_level", "courses", ["level"])
    if is_mysql:
        op.execute(
            "CREATE FULLTEXT INDEX ft_courses_title_description ON courses (title, description)"
        )
    else:
        _sqlite_fts()

    lessons = op.create_table(
        "course_lessons",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("course_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("instructions", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("goal_wpm", sa.Double, nullable=False),
        sa.Column("goal_accuracy", sa.Double, nullable=False),
        sa.Column("goal_seconds", sa.Integer, nullable=True),
        *_times(),
        mysql_charset="utf8mb4",
    )
    op.create_index(
        "ix_course_lessons_course_position", "course_lessons", ["course_id", "position"]
    )

    op.create_table(
        "user_typing_courses",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("course_id", sa.String(32), nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("enrolled_at", sa.BigInteger, nullable=False),
        sa.Column("last_activity_at", sa.BigInteger, nullable=False),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("user_id", "course_id"),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_user_typing_courses_course_id", "user_typing_courses", ["course_id"])
    op.create_index("ix_user_typing_courses_expires_at", "user_typing_courses", ["expires_at"])
    if is_mysql:
        op.execute(
            "ALTER TABLE user_typing_courses "
            f"PARTITION BY KEY(user_id) PARTITIONS {ENROLMENT_PARTITIONS}"
        )

    op.create_table(
        "user_lesson_progress",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("lesson_id", sa.String(32), nullable=False),
        sa.Column("course_id", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("best_wpm", sa.Double, nullable=False, server_default="0"),
        sa.Column("best_accuracy", sa.Double, nullable=False, server_default="0"),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
        sa.Column("completed_by", sa.String(32), nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "lesson_id"),
        mysql_charset="utf8mb4",
    )
    op.create_index(
        "ix_user_lesson_progress_user_course", "user_lesson_progress", ["user_id", "course_id"]
    )
    op.create_table(
        "lesson_tests",
        sa.Column("test_id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("course_id", sa.String(32), nullable=False),
        sa.Column("lesson_id", sa.String(32), nullable=False),
        sa.Column("goal", sa.String(200), nullable=False),
        sa.Column("issued_at", sa.BigInteger, nullable=False),
        sa.Column("result_id", sa.String(32), nullable=True),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_lesson_tests_issued_at", "lesson_tests", ["issued_at"])

    plans = op.create_table(
        "plans",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        sa.Column("price_cents", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("interval_count", sa.Integer, nullable=False, server_default="1"),
        sa.Column("active", sa.SmallInteger, nullable=False, server_default="1"),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("current_period_start", sa.BigInteger, nullable=False),
        sa.Column("current_period_end", sa.BigInteger, nullable=False),
        sa.Column("cancel_at_period_end", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("cancelled_at", sa.BigInteger, nullable=True),
        *_times(),
        mysql_charset="utf8mb4",
    )
    op.create_index("ux_subscriptions_user_id", "subscriptions", ["user_id"], unique=True)
    op.create_index(
        "ix_subscriptions_status_end", "subscriptions", ["status", "current_period_end"]
    )
    op.create_table(
        "subscription_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("subscription_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("period_end", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(32), nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index(
        "ux_subscription_history_reference", "subscription_history", ["reference"], unique=True
    )
    op.create_index(
        "ix_subscription_history_user_created", "subscription_history", ["user_id", "created_at"]
    )

    now = int(time.time() * 1000)
    op.bulk_insert(courses, [starter_course_row(course, now) for course in COURSES])
    op.bulk_insert(lessons, [row for c in COURSES for row in starter_lesson_rows(c, now)])
    op.bulk_insert(plans, [plan_row(plan, i, now) for i, plan in enumerate(PLANS)])


def _sqlite_fts() -> None:
    # The key is stored, not indexed; the triggers keep the index equal to the table.
    op.execute(
        "CREATE VIRTUAL TABLE courses_fts USING fts5("
        "id UNINDEXED, title, description, tokenize = 'unicode61 remove_diacritics 2')"
    )
    op.execute(
        "CREATE TRIGGER courses_fts_insert AFTER INSERT ON courses BEGIN "
        "INSERT INTO courses_fts (id, title, description) "
        "VALUES (new.id, new.title, new.description); END"
    )
    op.execute(
        "CREATE TRIGGER courses_fts_delete AFTER DELETE ON courses BEGIN "
        "DELETE FROM courses_fts WHERE id = old.id; END"
    )
    op.execute(
        "CREATE TRIGGER courses_fts_update AFTER UPDATE OF id, title, description ON courses "
        "BEGIN DELETE FROM courses_fts WHERE id = old.id; "
        "INSERT INTO courses_fts (id, title, description) "
        "VALUES (new.id, new.title, new.description); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "mysql":
        for trigger in ("courses_fts_insert", "courses_fts_delete", "courses_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS courses_fts")
    for table in (
        "subscription_history",
        "subscriptions",
        "plans",
        "lesson_tests",
        "user_lesson_progress",
        "user_typing_courses",
        "course_lessons",
        "courses",
    ):
        op.drop_table(table)
