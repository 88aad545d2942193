"""``typogram.revocation`` on both backends: the bound between processes, sessions revoked
alone, snapshots racing each other, and the notice every gateway node acts on.

Two ``Revocation`` objects on one database, cache and pub/sub stand for two
processes; fake clocks move time past the process-local bound and past the
time a revoked session may be forgotten.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import Clock, flush_cache
from typogram import keys
from typogram.errors import AppError
from typogram.platform import Platform
from typogram.revocation import Revocation, RevokeNotice, RevokeReason, decode_notice
from typogram.tokens import Claims, TokenType

pytestmark = pytest.mark.integration

BOUND_S = 2.0
SESSION_TTL_S = 900.0


def process(
    platform: Platform, clock: Clock, wall: Clock | None = None, **options: int
) -> Revocation:
    return Revocation(
        platform.db,
        platform.cache,
        platform.pubsub,
        platform.accounts,
        session_ttl_s=SESSION_TTL_S,
        local_s=BOUND_S,
        clock=clock,
        wall=wall or time.time,
        **options,
    )


def claims(user_id: str, *, version: int = 0, sid: str = "s1", expires_in: int = 600) -> Claims:
    return Claims(
        user_id, TokenType.ACCESS, version, "u", "user", "jti", int(time.time()) + expires_in, sid
    )


async def new_user(platform: Platform, name: str) -> str:
    return (await platform.accounts.create_user(name, f"{name}@example.com", "x")).id


async def test_a_revocation_elsewhere_is_seen_within_the_bound(platform: Platform) -> None:
    clock = Clock()
    reader, revoker = process(platform, clock), process(platform, clock)
    user = await new_user(platform, "rv_alice")
    await reader.check(claims(user))

    assert await revoker.revoke_user(user, RevokeReason.LOGOUT_ALL) == 1
    with pytest.raises(AppError, match="revoked"):
        await revoker.check(claims(user))  # the revoking process: at once
    clock.now += BOUND_S - 0.01
    await reader.check(claims(user))  # another process: still its own copy
    with pytest.raises(AppError, match="revoked"):
        await reader.check(claims(user), fresh=True)  # a gateway asks the shared state
    clock.now += 0.02
    with pytest.raises(AppError, match="token has been revoked"):
        await reader.check(claims(user))  # past the bound: re-read
    await reader.check(claims(user, version=1))


async def test_one_session_is_revoked_alone(platform: Platform) -> None:
    clock = Clock()
    reader, revoker = process(platform, clock), process(platform, clock)
    user = await new_user(platform, "rv_bob")
    await platform.accounts.store_refresh("j1", user, "s1", int(time.time()) + 3600)
    await platform.accounts.store_refresh("j2", user, "s2", int(time.time()) + 3600)

    await revoker.revoke_session(user, "s1", RevokeReason.REFRESH_REPLAY)
    clock.now += BOUND_S + 0.01
    with pytest.raises(AppError, match="session has been revoked"):
        await reader.check(claims(user, sid="s1"))
    await reader.check(claims(user, sid="s2"))
    await reader.check(claims(user, sid=""))  # a token from before sessions: its user's only
    # The session's refresh tokens are spent; the other session's are not.
    with pytest.raises(AppError):
        await platform.accounts.spend_refresh("j1", user)
    assert await platform.accounts.spend_refresh("j2", user) == "s2"
    entries = await platform.accounts.audit_entries(user)
    assert any(e["action"] == "session_revoke" and '"s1"' in e["detail"] for e in entries)


async def test_a_revoked_session_survives_a_lost_cache_and_is_forgotten_later(
    platform: Platform,
) -> None:
    wall = Clock(time.time())
    revocation = process(platform, Clock(), wall)
    user = await new_user(platform, "rv_carol")
    await revocation.revoke_session(user, "s1", RevokeReason.REFRESH_REPLAY)
    await flush_cache(platform)
    state = await revocation.state(user, fresh=True)  # filled again from SQL
    assert state is not None and "s1" in state.revoked
    wall.now += SESSION_TTL_S + 61  # every token of the session has expired by now
    state = await revocation.state(user, fresh=True)
    assert state is not None and "s1" not in state.revoked
    await flush_cache(platform)
    state = await revocation.state(user, fresh=True)
    assert state is not None and state.revoked == {}


async def test_an_older_snapshot_never_undoes_a_revocation(platform: Platform) -> None:
    clock = Clock()
    revocation = process(platform, clock)
    user = await new_user(platform, "rv_dave")
    await revocation.revoke_user(user, RevokeReason.PASSWORD_CHANGE)
    await revocation.revoke_user(user, RevokeReason.PASSWORD_CHANGE)
    # A reader that read SQL before those writes fills the shared set late.
    await platform.cache.zadd(keys.user_tokens(user), {"v": 0}, only_greater=True)
    clock.now += BOUND_S + 1
    state = await revocation.state(user)
    assert state is not None and state.version == 2


async def test_concurrent_revocations_all_hold(platform: Platform) -> None:
    clock = Clock()
    writers = [process(platform, clock) for _ in range(4)]
    reader = process(platform, clock)
    user = await new_user(platform, "rv_erin")
    sids = [f"s{i}" for i in range(8)]
    await asyncio.gather(
        *(
            writers[i % 4].revoke_session(user, sid, RevokeReason.REFRESH_REPLAY)
            for i, sid in enumerate(sids)
        ),
        *(writers[i].revoke_user(user, RevokeReason.LOGOUT_ALL) for i in range(2)),
    )
    state = await reader.state(user, fresh=True)
    assert state is not None
    assert state.version == 2 and set(state.revoked) == set(sids)


async def test_every_revocation_tells_the_user_channel(platform: Platform) -> None:
    revocation = process(platform, Clock())
    user = await new_user(platform, "rv_frank")
    heard: list[RevokeNotice] = []
    both = asyncio.Event()
    channel = keys.channel_user(user)

    def listener(_: str, payload: bytes) -> None:
        heard.append(decode_notice(payload))
        if len(heard) == 2:
            both.set()

    await platform.pubsub.subscribe(channel, listener)
    try:
        await revocation.revoke_user(user, RevokeReason.ROLE_CHANGE)
        await revocation.revoke_session(user, "s9", RevokeReason.REFRESH_REPLAY)
        await asyncio.wait_for(both.wait(), 5)
    finally:
        await platform.pubsub.unsubscribe(channel, listener)
    assert heard == [
        RevokeNotice(version=1, reason="role_change"),
        RevokeNotice(sid="s9", reason="refresh_replay"),
    ]


async def test_unknown_users_and_guests(platform: Platform) -> None:
    revocation = process(platform, Clock())
    assert await revocation.state("no-such-user") is None
    with pytest.raises(AppError, match="revoked"):
        await revocation.check(claims("no-such-user"))
    guest = Claims("guest:1", TokenType.GUEST, 0, "g", "guest", "j", int(time.time()) + 60, "x")
    await revocation.check(guest)  # nothing to look up: guests only expire
    expired = Claims("guest:1", TokenType.GUEST, 0, "g", "guest", "j", int(time.time()) - 1)
    with pytest.raises(AppError, match="expired"):
        await revocation.check(expired)


async def test_the_local_copy_is_bounded(platform: Platform) -> None:
    clock = Clock()
    reader = process(platform, clock, local_max=2)
    ids = [await new_user(platform, f"rv_u{i}") for i in range(3)]
    for user_id in ids:
        await reader.check(claims(user_id))
    # The oldest read was dropped: a revocation elsewhere is seen for it at once.
    for user_id in (ids[0], ids[2]):
        await platform.revocation.revoke_user(user_id, RevokeReason.LOGOUT_ALL)
    with pytest.raises(AppError):
        await reader.check(claims(ids[0]))
    await reader.check(claims(ids[2]))  # still held, within the bound
