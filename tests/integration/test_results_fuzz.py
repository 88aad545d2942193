"""Forged and malformed keystroke logs through ``POST /api/v1/results``: whatever the
log, the answer is a result or a 4xx with machine-readable reasons, never a 5xx."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rest.app import create_app
from tests.conftest import cheap_passwords, make_settings
from typogram.platform import open_platform

# A refusal names its reasons, and the flags it would have had besides.
REASONS = {
    "bad_key", "wpm_over_cap", "robotic_timing", "text_not_reproduced", "time_backwards",
    "too_short", "wpm_high", "uniform_timing", "symmetric_timing", "no_timing_structure",
    "far_from_history",
}  # fmt: skip
keys = st.one_of(
    st.sampled_from(["Backspace", " ", "e", "t", "a", "E", "é", "\u0301", "😀", "\t", "\x00"]),
    st.text(min_size=0, max_size=9),
)
times = st.one_of(st.integers(0, 600_000), st.integers(0, 86_400_000))
logs = st.lists(st.tuples(times, keys), max_size=120).map(
    lambda entries: [[t, k] for t, k in entries]
)
modes = st.sampled_from(["mode=words&count=5", "mode=time&seconds=15"])


@pytest.mark.integration
def test_no_log_gets_a_5xx(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    platform_cm = open_platform(
        make_settings(data_dir=str(tmp_path)), migrate=True, passwords=cheap_passwords()
    )
    platform = loop.run_until_complete(platform_cm.__aenter__())
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(platform)), base_url="http://fuzz"
    )
    registered = loop.run_until_complete(
        client.post(
            "/api/v1/auth/register",
            json={"username": "fuzzer", "email": "f@example.com", "password": "correct horse"},
        )
    )
    auth = {"Authorization": f"Bearer {registered.json()['access_token']}"}

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(log=logs, mode=modes, sort=st.booleans())
    def any_log(log: list[list[object]], mode: str, sort: bool) -> None:
        if sort:
            log = sorted(log, key=lambda entry: entry[0])  # type: ignore[arg-type,return-value]
        test = loop.run_until_complete(client.get(f"/api/v1/tests/new?{mode}", headers=auth))
        body = {"test_id": test.json()["test_id"], "keystrokes": log}
        answer = loop.run_until_complete(client.post("/api/v1/results", json=body, headers=auth))
        assert answer.status_code in (201, 400, 422), answer.text
        if answer.status_code == 422:
            error = answer.json()["error"]
            assert set(error["fields"]["keystrokes"].split(",")) <= REASONS, error

    try:
        any_log()
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(platform_cm.__aexit__(None, None, None))
        loop.close()
