"""The blog and the staff tools: posts, their tags and old slugs, bans, the audit actor.

* ``blog_posts`` with the strategy's indexes (``is_published``,
  ``published_at``, ``slug``), ``blog_post_tags`` (tag filter) and
  ``blog_slug_redirects`` (a changed slug keeps answering). Full text over
  title and body text: a ``FULLTEXT`` index on MySQL, an FTS5 table
  ``blog_posts_fts`` kept in step by triggers on SQLite.
* ``user_bans``: every ban with its reason, end, who set it and who lifted it.
* ``audit_log.actor_id`` (indexed): the staff member who acted on ``user_id``.

Revision ID: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _long_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")


def upgrade() -> None:
    is_mysql = op.get_bind().dialect.name == "mysql"
    op.create_table(
        "blog_posts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("excerpt", sa.String(500), nullable=False, server_default=""),
        sa.Column("excerpt_given", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("body_markdown", _long_text(), nullable=False),
        sa.Column("body_html", _long_text(), nullable=False),
        sa.Column("body_text", _long_text(), nullable=False),
        sa.Column("cover_url", sa.String(500), nullable=False, server_default=""),
        sa.Column("tags", sa.String(400), nullable=False, server_default=""),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("author_id", sa.String(32), nullable=False),
        sa.Column("is_published", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("published_at", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ux_blog_posts_slug", "blog_posts", ["slug"], unique=True)
    op.create_index("ix_blog_posts_published", "blog_posts", ["is_published", "published_at", "id"])
    op.create_index("ix_blog_posts_published_at", "blog_posts", ["published_at"])
    op.create_index("ix_blog_posts_author_id", "blog_posts", ["author_id"])
    if is_mysql:
        op.execute(
            "CREATE FULLTEXT INDEX ft_blog_posts_title_body ON blog_posts (title, body_text)"
        )
    else:
        _sqlite_fts()
    op.create_table(
        "blog_post_tags",
        sa.Column("tag", sa.String(32), nullable=False),
        sa.Column("post_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("tag", "post_id"),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_blog_post_tags_post_id", "blog_post_tags", ["post_id"])
    op.create_table(
        "blog_slug_redirects",
        sa.Column("slug", sa.String(64), primary_key=True),
        sa.Column("post_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_blog_slug_redirects_post_id", "blog_slug_redirects", ["post_id"])
    op.create_table(
        "user_bans",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("ends_at", sa.BigInteger, nullable=True),
        sa.Column("created_by", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("lifted_at", sa.BigInteger, nullable=True),
        sa.Column("lifted_by", sa.String(32), nullable=True),
        sa.Column("lift_reason", sa.String(500), nullable=False, server_default=""),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_user_bans_user_lifted", "user_bans", ["user_id", "lifted_at"])
    op.create_index("ix_user_bans_created_at", "user_bans", ["created_at"])
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("actor_id", sa.String(32), nullable=True))
    op.create_index("ix_audit_log_actor_created", "audit_log", ["actor_id", "created_at"])


def _sqlite_fts() -> None:
    # The key is stored, not indexed; the triggers keep the index equal to the table.
    op.execute(
        "CREATE VIRTUAL TABLE blog_posts_fts USING fts5("
        "id UNINDEXED, title, body_text, tokenize = 'unicode61 remove_diacritics 2')"
    )
    op.execute(
        "CREATE TRIGGER blog_posts_fts_insert AFTER INSERT ON blog_posts BEGIN "
        "INSERT INTO blog_posts_fts (id, title, body_text) "
        "VALUES (new.id, new.title, new.body_text); END"
    )
    op.execute(
        "CREATE TRIGGER blog_posts_fts_delete AFTER DELETE ON blog_posts BEGIN "
        "DELETE FROM blog_posts_fts WHERE id = old.id; END"
    )
    op.execute(
        "CREATE TRIGGER blog_posts_fts_update AFTER UPDATE OF id, title, body_text ON blog_posts "
        "BEGIN DELETE FROM blog_posts_fts WHERE id = old.id; "
        "INSERT INTO blog_posts_fts (id, title, body_text) "
        "VALUES (new.id, new.title, new.body_text); END"
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor_created", "audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("actor_id")
    if op.get_bind().dialect.name != "mysql":
        for trigger in ("blog_posts_fts_insert", "blog_posts_fts_delete", "blog_posts_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS blog_posts_fts")
    for table in ("user_bans", "blog_slug_redirects", "blog_post_tags", "blog_posts"):
        op.drop_table(table)
