"""Schemathesis against a running ``typogram serve``: every operation, no server error.

The whole OpenAPI document is exercised as an outside attacker would see it:
coverage cases (boundaries, wrong types, missing fields), random bodies and
stateful sequences, with an admin's token so that the staff routes are
reached past their role check. Only the ``not_a_server_error`` check runs:
whatever arrives, the answer is below 500.

Operations that end the fuzzer's own login session (logout, password change)
are left out: they are covered by their own tests and would turn the rest of
the run into 401s.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import MYSQL_SERVER
from tests.served import cli_env, run_cli, start_serve, stop_serve

pytestmark = pytest.mark.integration

PASSWORD = "fuzzing the whole api, politely"
SELF_ENDING = r"/api/v1/auth/(logout|logout-all|password)$"


def _env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    return cli_env(
        tmp_path,
        TYPOGRAM_RATE_LIMIT_IP_PER_MIN="1000000",
        TYPOGRAM_RATE_LIMIT_USER_PER_MIN="1000000",
        TYPOGRAM_REGISTER_PER_IP_PER_HOUR="1000000",
        TYPOGRAM_GUEST_TOKENS_PER_IP_PER_HOUR="1000000",
        TYPOGRAM_LOGIN_ATTEMPTS_PER_IP_PER_15MIN="1000000",
        **extra,
    )


@pytest.fixture(params=["sqlite", "mariadb"])
def serve_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield _env(tmp_path, {})
        return
    name = f"typogram_test_fuzz_{uuid.uuid4().hex[:8]}"
    yield _env(tmp_path, {"TYPOGRAM_DATABASE_URL": f"{MYSQL_SERVER}/{name}"})
    engine = create_engine(MYSQL_SERVER.replace("mysql://", "mysql+pymysql://", 1))
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        engine.dispose()


@pytest.fixture
def served(serve_env: dict[str, str]) -> Iterator[str]:
    """``typogram serve`` on the chosen database, ready, with an admin account."""
    made = run_cli(serve_env, "admin", "create-admin", "fuzz_admin", "--email",
                   "fuzz@example.com", "--password-stdin", stdin=PASSWORD + "\n",
                   timeout=120)  # fmt: skip
    assert made.returncode == 0, made.stderr
    process, base = start_serve(serve_env, ready_within_s=60)
    try:
        yield base
    finally:
        stop_serve(process, within_s=20)


def test_no_operation_answers_a_server_error(served: str, tmp_path: Path) -> None:
    login = httpx.post(
        f"{served}/api/v1/auth/login",
        json={"login": "fuzz_admin", "password": PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{served}/api/v1/openapi.json"]
    command += ["--checks", "not_a_server_error", "--max-examples", "8", "--seed", "7"]
    command += ["--exclude-path-regex", SELF_ENDING, "--request-timeout", "30", "--no-color"]
    command += ["--header", f"Authorization: Bearer {token}"]
    report = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert report.returncode == 0, report.stdout[-6000:] + report.stderr[-2000:]
    assert " passed" in report.stdout
    assert "Authentication failed" not in report.stdout, report.stdout[-3000:]
