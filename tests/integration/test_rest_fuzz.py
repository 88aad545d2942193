"""Schema-driven fuzzing: every route in the OpenAPI document, random bodies and tokens.

Whatever arrives, the answer is a JSON error below 500 or a success: never
a 5xx, never a non-JSON body.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rest.app import create_app
from tests.conftest import cheap_passwords, make_settings
from typogram.platform import open_platform

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "username",
        "email",
        "password",
        "login",
        "refresh_token",
        "name",
        "display_name",
        "bio",
        "keyboard_layout",
        "country",
        "current_password",
        "new_password",
    ]
)
bodies = st.one_of(
    st.dictionaries(field_names, json_values, max_size=5).map(msgspec.json.encode),
    json_values.map(msgspec.json.encode),
    st.binary(max_size=64),
)
headers = st.one_of(
    st.just({}),
    st.text(max_size=60).map(
        lambda t: {"Authorization": "Bearer " + t.encode("ascii", "ignore").decode()}
    ),
)


def _operations(doc: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [
        (method.upper(), path.replace("{username}", "someone"))
        for path, item in doc["paths"].items()
        for method in item
    ]


@pytest.mark.integration
def test_no_route_answers_5xx(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    platform_cm = open_platform(
        make_settings(data_dir=str(tmp_path)), migrate=True, passwords=cheap_passwords()
    )
    platform = loop.run_until_complete(platform_cm.__aenter__())
    app = create_app(platform)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fuzz")
    operations = _operations(msgspec.json.decode(app.state.openapi))

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(operation=st.sampled_from(operations), body=bodies, extra=headers)
    def request_never_fails(operation: tuple[str, str], body: bytes, extra: dict[str, str]) -> None:
        method, path = operation
        response = loop.run_until_complete(
            client.request(
                method, path, content=body, headers={"content-type": "application/json", **extra}
            )
        )
        assert response.status_code < 500, (method, path, body, response.text)
        if path != "/metrics":
            response.json()

    try:
        request_never_fails()
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(platform_cm.__aexit__(None, None, None))
        loop.close()
