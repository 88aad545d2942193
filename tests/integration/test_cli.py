"""The ``typogram`` command as an operator runs it: real processes, real exit codes."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.served import cli_env, run_cli, start_serve, stop_serve

pytestmark = pytest.mark.integration


def test_migrate_then_partitions_on_sqlite(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert run_cli(env, "migrate").returncode == 0
    assert (tmp_path / "typogram.sqlite3").exists()
    assert run_cli(env, "partitions", "--dry-run").returncode == 0
    assert run_cli(env, "partitions").returncode == 0


def test_seed_courses_and_expire_subscriptions(tmp_path: Path) -> None:
    import sqlite3

    env = cli_env(tmp_path)
    assert run_cli(env, "migrate").returncode == 0
    database = sqlite3.connect(tmp_path / "typogram.sqlite3")
    starter = database.execute("SELECT COUNT(*) FROM courses").fetchone()[0]
    assert starter >= 6
    database.execute("DELETE FROM courses WHERE slug = 'top-row'")
    database.execute("UPDATE courses SET title = 'Edited' WHERE slug = 'home-row-basics'")
    database.commit()
    seeded = run_cli(env, "seed-courses")
    assert seeded.returncode == 0, seeded.stderr
    count, title = database.execute(
        "SELECT COUNT(*), MAX(CASE WHEN slug = 'home-row-basics' THEN title END) FROM courses"
    ).fetchone()
    assert (count, title) == (starter, "Edited")  # the missing one is back, edits are kept
    assert run_cli(env, "seed-courses", "--replace").returncode == 0
    title = database.execute("SELECT title FROM courses WHERE slug = 'home-row-basics'")
    assert title.fetchone()[0] == "Home-row basics"
    expired = run_cli(env, "subscriptions", "expire")
    assert expired.returncode == 0, expired.stderr
    assert run_cli(env, "subscriptions", "renew").returncode == 2
    database.close()


def test_unreachable_backend_is_one_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path, TYPOGRAM_DATABASE_URL="mysql://root@127.0.0.1:1/nothing")
    done = run_cli(env, "rest")
    assert done.returncode == 1
    assert "cannot reach database at mysql://root@127.0.0.1:1/nothing" in done.stderr
    assert "Traceback" not in done.stderr
    env = cli_env(tmp_path, TYPOGRAM_REDIS_URL="redis://127.0.0.1:1/0")
    done = run_cli(env, "migrate")
    assert done.returncode == 1
    assert "Redis" in done.stderr and "Traceback" not in done.stderr


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    done = run_cli(cli_env(tmp_path, TYPOGRAM_ENVIRONMENT="production"), "rest")
    assert done.returncode == 2
    assert "TYPOGRAM_JWT_SECRET" in done.stderr
    done = run_cli(cli_env(tmp_path), "worker", "no-such-group")
    assert done.returncode == 2
    assert "unknown worker group" in done.stderr


def test_serve_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    process, base = start_serve(env, ready_within_s=30)
    try:
        registered = httpx.post(
            f"{base}/api/v1/auth/register",
            json={"username": "cli_user", "email": "cli@example.com", "password": "correct horse"},
            # Forged: no proxy is trusted, so the audit log keeps the peer's address.
            headers={"X-Forwarded-For": "192.0.2.99"},
        )
        assert registered.status_code == 201
        assert registered.headers["cache-control"] == "no-store"
        with sqlite3.connect(tmp_path / "typogram.sqlite3") as db:
            ips = db.execute("SELECT ip FROM audit_log WHERE action = 'register'").fetchall()
        assert ips == [("127.0.0.1",)]
        with socket.create_connection(("127.0.0.1", int(env["TYPOGRAM_WS_PORT"])), timeout=2):
            pass
        # /metrics is on its own loopback port; the public port has none.
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 404
        metrics_url = f"http://127.0.0.1:{env['TYPOGRAM_METRICS_PORT']}/metrics"
        metrics = httpx.get(metrics_url, timeout=5).text
        assert 'typogram_component{component="gateway",stat="connections"}' in metrics
        assert 'typogram_component{component="races",stat="race_channels"}' in metrics
    finally:
        assert stop_serve(process, within_s=15) == 0


def _admin(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_cli(env, "admin", *args, stdin=stdin)


def _roles_and_audit(env: dict[str, str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    from sqlalchemy import create_engine, text

    url = (
        env.get("TYPOGRAM_DATABASE_URL") or f"sqlite:///{env['TYPOGRAM_DATA_DIR']}/typogram.sqlite3"
    )
    engine = create_engine(url.replace("mysql://", "mysql+pymysql://", 1))
    try:
        with engine.connect() as conn:
            roles = dict(conn.execute(text("SELECT username, role FROM users")).all())
            audit = conn.execute(
                text("SELECT action, actor_id FROM audit_log WHERE actor_id = 'cli' ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    return roles, [(action, actor) for action, actor in audit]


@pytest.mark.parametrize("database", ["sqlite", "mariadb"])
def test_the_first_admin_needs_no_sql(tmp_path: Path, database: str) -> None:
    import uuid

    from sqlalchemy import create_engine, text

    from tests.conftest import MYSQL_SERVER

    extra = {}
    name = f"typogram_test_cli_{uuid.uuid4().hex[:8]}"
    if database == "mariadb":
        extra["TYPOGRAM_DATABASE_URL"] = f"{MYSQL_SERVER}/{name}"
    env = cli_env(tmp_path, **extra)
    try:
        made = _admin(env, "create-admin", "root_admin", "--email", "root@example.com",
                      "--password-stdin", stdin="a long passphrase\n")  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert "created admin root_admin" in made.stdout
        weak = _admin(env, "create-admin", "x", "--email", "bad", "--password-stdin", stdin="1\n")
        assert weak.returncode == 2 and "typogram:" in weak.stderr
        guessable = _admin(env, "create-admin", "second", "--email", "s@example.com",
                           "--password-stdin", stdin="password1\n")  # fmt: skip
        assert guessable.returncode == 2 and "password: too easy to guess" in guessable.stderr
        taken = _admin(env, "create-admin", "root_admin", "--email", "o@example.com",
                       "--password-stdin", stdin="a long passphrase\n")  # fmt: skip
        assert taken.returncode == 1 and "already" in taken.stderr
        no_tty = _admin(env, "create-admin", "other", "--email", "o@example.com")
        assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr

        made = _admin(env, "create-admin", "writer", "--email", "w@example.com",
                      "--password-stdin", stdin="another passphrase\n")  # fmt: skip
        assert _admin(env, "grant", "writer", "editor").returncode == 0
        last = _admin(env, "revoke", "root_admin")
        assert last.returncode == 1 and "last admin" in last.stderr
        assert _admin(env, "grant", "nobody", "editor").returncode == 1
        assert _admin(env, "grant", "writer", "emperor").returncode == 2
        roles, audit = _roles_and_audit(env)
        assert roles == {"root_admin": "admin", "writer": "editor"}
        assert [action for action, _ in audit].count("role_change") == 3
        assert ("register", "cli") in audit
    finally:
        if database == "mariadb":
            engine = create_engine(MYSQL_SERVER.replace("mysql://", "mysql+pymysql://", 1))
            with engine.begin() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            engine.dispose()
