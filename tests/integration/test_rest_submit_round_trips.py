"""The submission path's round trips: a test's claim is sent with the read of the test
and kept only by an accepted submission; the rate-limit middleware reads a user's
token version with its counters."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.integration import test_rest_results
from tests.integration.test_rest_results import new_test, register, submit, typed_by_hand
from typogram import keys
from typogram.platform import Platform
from typogram.revocation import RevokeReason, TokenState

pytestmark = pytest.mark.integration

client = test_rest_results.client  # the same app client fixture


async def test_refused_submissions_give_the_claim_back(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await register(client)
    test = await new_test(client, auth)
    claim = keys.test_submitted(test["test_id"])
    robotic = [[i * 120, ch] for i, ch in enumerate(test["text"])]
    assert (await submit(client, auth, test["test_id"], robotic)).status_code == 422
    assert (await submit(client, auth, test["test_id"], [[0, "ab"]])).status_code == 422  # bad_key
    assert (await submit(client, auth, test["test_id"], [[0]])).status_code == 400  # not a log
    assert await platform.cache.get(claim) is None
    accepted = await submit(client, auth, test["test_id"], typed_by_hand(test["text"]))
    assert accepted.status_code == 201, accepted.text
    assert await platform.cache.get(claim) is not None


async def test_a_submitted_test_checks_the_log_before_the_conflict(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await register(client)
    test = await new_test(client, auth)
    log = typed_by_hand(test["text"])
    assert (await submit(client, auth, test["test_id"], log)).status_code == 201
    # A refused resubmission answers as before the claim existed and leaves it in place.
    robotic = [[i * 120, ch] for i, ch in enumerate(test["text"])]
    assert (await submit(client, auth, test["test_id"], robotic)).status_code == 422
    again = await submit(client, auth, test["test_id"], log)
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "this test has already been submitted"
    assert await platform.cache.get(keys.test_submitted(test["test_id"])) is not None


async def test_someone_elses_test_is_not_found_and_keeps_its_claim(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    alice, bob = await register(client, "alice"), await register(client, "bob")
    test = await new_test(client, alice)
    log = typed_by_hand(test["text"])
    assert (await submit(client, bob, test["test_id"], log)).status_code == 404
    assert (await submit(client, alice, test["test_id"], log)).status_code == 201
    assert (await submit(client, bob, test["test_id"], log)).status_code == 404
    assert (await submit(client, alice, test["test_id"], log)).status_code == 409
    assert await platform.cache.get(keys.test_submitted(test["test_id"])) is not None


async def test_concurrent_submissions_accept_one(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    test = await new_test(client, auth)
    log = typed_by_hand(test["text"])
    answers = await asyncio.gather(*(submit(client, auth, test["test_id"], log) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]


async def test_guests_claim_nothing(client: httpx.AsyncClient, platform: Platform) -> None:
    guest = (await client.post("/api/v1/auth/guest")).json()["access_token"]
    auth = {"Authorization": f"Bearer {guest}"}
    test = await new_test(client, auth)
    log = typed_by_hand(test["text"])
    assert (await submit(client, auth, test["test_id"], log)).status_code == 200
    assert (await submit(client, auth, test["test_id"], log)).status_code == 200
    assert await platform.cache.get(keys.test_submitted(test["test_id"])) is None


async def test_the_version_is_read_before_authenticate_needs_it(
    client: httpx.AsyncClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = await register(client)
    me = (await client.get("/api/v1/users/me", headers=auth)).json()
    revocation = platform.revocation
    assert revocation.knows(me["id"])
    revocation._local.clear()  # as if this process had not seen the user for a while
    assert not revocation.knows(me["id"])
    reads: list[str] = []
    read = revocation.state

    async def counted(user_id: str, *, fresh: bool = False) -> TokenState | None:
        reads.append(user_id)
        return await read(user_id, fresh=fresh)

    monkeypatch.setattr(revocation, "state", counted)
    assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 200
    # One read with the counters; ``authenticate`` answers from this process's copy.
    assert reads == [me["id"], me["id"]] and revocation.knows(me["id"])


async def test_a_failed_early_read_is_only_a_lost_head_start(
    client: httpx.AsyncClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = await register(client)
    revocation = platform.revocation
    revocation._local.clear()
    read = revocation.state
    failures = [ConnectionError("cache down")]

    async def flaky(user_id: str, *, fresh: bool = False) -> TokenState | None:
        if failures:
            raise failures.pop()
        return await read(user_id, fresh=fresh)

    monkeypatch.setattr(revocation, "state", flaky)
    assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 200
    assert not failures


async def test_a_revoked_token_is_still_refused(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await register(client)
    me = (await client.get("/api/v1/users/me", headers=auth)).json()
    await platform.revocation.revoke_user(me["id"], RevokeReason.LOGOUT_ALL)
    platform.revocation._local.clear()
    refused = await client.get("/api/v1/users/me", headers=auth)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "token has been revoked"
