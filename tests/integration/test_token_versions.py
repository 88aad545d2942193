"""Token versions kept in process: the revocation bound between processes, on both backends.

Two ``Accounts`` on one database and one cache stand for two processes; a
fake clock moves time past the process-local bound.
"""

from __future__ import annotations

import pytest

from tests.conftest import Clock
from typogram import keys
from typogram.accounts import Accounts
from typogram.platform import Platform

pytestmark = pytest.mark.integration

BOUND_S = 2.0


def process(platform: Platform, clock: Clock, **options: int) -> Accounts:
    return Accounts(
        platform.db, platform.cache, token_version_local_s=BOUND_S, clock=clock, **options
    )


async def test_a_bump_elsewhere_is_seen_within_the_bound(platform: Platform) -> None:
    clock = Clock()
    reader, bumper = process(platform, clock), process(platform, clock)
    user = await platform.accounts.create_user("tv_alice", "tv_alice@example.com", "x")
    assert await reader.token_version(user.id) == 0

    assert await bumper.bump_token_version(user.id) == 1
    assert await bumper.token_version(user.id) == 1  # the bumping process: at once
    clock.now += BOUND_S - 0.01
    assert await reader.token_version(user.id) == 0  # another process: still its own copy
    clock.now += 0.02
    assert await reader.token_version(user.id) == 1  # past the bound: re-read


async def test_a_bump_here_is_never_undone_by_an_older_read(platform: Platform) -> None:
    clock = Clock()
    accounts = process(platform, clock)
    user = await platform.accounts.create_user("tv_bob", "tv_bob@example.com", "x")
    assert await accounts.token_version(user.id) == 0
    await accounts.bump_token_version(user.id)
    await accounts.bump_token_version(user.id)
    # The shared cache answering an older version (a write still in flight elsewhere)
    # must not lower what this process knows.
    await platform.cache.set(keys.user_token_version(user.id), b"1", ttl=60)
    clock.now += BOUND_S + 1
    assert await accounts.token_version(user.id) == 2


async def test_unknown_users_are_not_remembered(platform: Platform) -> None:
    clock = Clock()
    accounts = process(platform, clock)
    assert await accounts.token_version("no-such-user") is None
    user = await platform.accounts.create_user("tv_carol", "tv_carol@example.com", "x")
    assert await accounts.token_version(user.id) == 0


async def test_the_local_copy_is_bounded(platform: Platform) -> None:
    clock = Clock()
    accounts = process(platform, clock, token_version_local_max=2)
    ids = [
        (await platform.accounts.create_user(f"tv_u{i}", f"tv_u{i}@example.com", "x")).id
        for i in range(3)
    ]
    for user_id in ids:
        assert await accounts.token_version(user_id) == 0
    # The oldest read was dropped: a bump elsewhere is seen for it at once.
    await platform.accounts.bump_token_version(ids[0])
    await platform.accounts.bump_token_version(ids[2])
    assert await accounts.token_version(ids[0]) == 1
    assert await accounts.token_version(ids[2]) == 0  # still held, within the bound
