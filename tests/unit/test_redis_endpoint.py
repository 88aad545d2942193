"""Where Redis is: a URL, or the master Sentinel names (``typogram.adapters.redis_endpoint``)."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from typogram.adapters.redis_endpoint import RedisEndpoint, parse_address, with_address
from typogram.settings import SettingsError


def test_sentinel_addresses() -> None:
    assert parse_address("10.0.0.1:26380") == ("10.0.0.1", 26380)
    assert parse_address(" sentinel-0.sentinel ") == ("sentinel-0.sentinel", 26379)
    assert parse_address("[::1]:26379") == ("::1", 26379)
    with pytest.raises(ValueError, match="host:port"):
        parse_address("host:port")


def test_the_master_address_replaces_only_host_and_port() -> None:
    assert with_address("redis://", "10.0.0.5", 6380) == "redis://10.0.0.5:6380"
    assert (
        with_address("rediss://app:s3cret@ignored:1/2", "10.0.0.5", 6380)
        == "rediss://app:s3cret@10.0.0.5:6380/2"
    )
    assert with_address("redis://:pw@/0", "::1", 6379) == "redis://:pw@[::1]:6379/0"


async def test_without_sentinels_the_url_is_used_as_it_is() -> None:
    endpoint = RedisEndpoint("redis://:pw@cache:6379/3")
    assert not endpoint.uses_sentinel
    assert await endpoint.resolve() == "redis://:pw@cache:6379/3"
    assert endpoint.describe() == "redis://:***@cache:6379/3"


def test_endpoints_of_the_same_data_compare_equal() -> None:
    one = RedisEndpoint("redis://", sentinels=["a:1", "b:2"], master="m")
    two = RedisEndpoint("redis://", sentinels=["a:1", "b:2"], master="m")
    other = RedisEndpoint("redis://", sentinels=["a:1", "b:2"], master="n")
    assert one.key() == two.key() != other.key()
    assert one.describe() == "sentinel://a:1,b:2/m"


def test_settings_switch_to_redis_with_sentinels_alone_and_refuse_bad_ones() -> None:
    assert make_settings(redis_sentinels=("s:26379",)).uses_redis
    assert not make_settings().uses_redis
    with pytest.raises(SettingsError, match="REDIS_SENTINELS"):
        make_settings(redis_sentinels=("s:port",))
    with pytest.raises(SettingsError, match="REDIS_SENTINELS"):
        make_settings(redis_sentinels=("s:26379",), redis_url="unix:///tmp/redis.sock")
