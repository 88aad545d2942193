"""One contract for the archive port: a local folder and S3 (a moto S3 server over HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from typogram.adapters.archive import LocalArchive, S3Archive, archive_from_settings
from typogram.errors import BackendUnavailable
from typogram.ports import Archive
from typogram.settings import load


@pytest.fixture(scope="session")
def s3_endpoint(monkeypatch_session: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def monkeypatch_session() -> Iterator[pytest.MonkeyPatch]:
    patch = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        patch.setenv(name, value)
    yield patch
    patch.undo()


@pytest.fixture(params=["local", "s3"])
async def archive(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Archive]:
    adapter: Archive
    if request.param == "local":
        adapter = LocalArchive(tmp_path / "archive")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        adapter = S3Archive(
            f"typogram-{uuid.uuid4().hex[:8]}",
            prefix="cold",
            endpoint_url=endpoint,
            region="us-east-1",
            create_bucket=True,
        )
    async with adapter:
        yield adapter


async def test_put_get_list_delete(archive: Archive) -> None:
    await archive.ping()
    assert await archive.get("test_results/2026-01.jsonl.gz") is None
    await archive.put("test_results/2026-01.jsonl.gz", b"one")
    await archive.put("test_results/2026-02.jsonl.gz", b"two")
    await archive.put("chat/2026-01.jsonl.gz", b"three")
    await archive.put("test_results/2026-01.jsonl.gz", b"one again")
    assert await archive.get("test_results/2026-01.jsonl.gz") == b"one again"
    assert await archive.list("test_results/") == [
        "test_results/2026-01.jsonl.gz",
        "test_results/2026-02.jsonl.gz",
    ]
    assert len(await archive.list()) == 3
    await archive.delete("chat/2026-01.jsonl.gz")
    assert await archive.get("chat/2026-01.jsonl.gz") is None
    assert archive.statistics()["puts"] == 4


@pytest.mark.parametrize("key", ["", "../escape", "/absolute", "a/../../b", "folder/"])
async def test_unsafe_keys_are_refused(archive: Archive, key: str) -> None:
    with pytest.raises(ValueError):
        await archive.put(key, b"x")


async def test_use_after_close_is_refused(tmp_path: Path) -> None:
    adapter = LocalArchive(tmp_path)
    async with adapter:
        pass
    with pytest.raises(RuntimeError):
        await adapter.put("a", b"b")


async def test_unreachable_s3_is_one_clear_error(monkeypatch_session: pytest.MonkeyPatch) -> None:
    adapter = S3Archive(
        "nope", endpoint_url="http://127.0.0.1:9", region="us-east-1", connect_timeout_s=0.5
    )
    with pytest.raises(BackendUnavailable, match="archive"):
        async with adapter:
            pass


def test_settings_pick_the_adapter(tmp_path: Path) -> None:
    local = archive_from_settings(load(env={}, data_dir=str(tmp_path)))
    assert isinstance(local, LocalArchive) and local.root == tmp_path / "archive"
    s3 = archive_from_settings(load(env={}, archive_url="s3://bucket/some/prefix"))
    assert isinstance(s3, S3Archive) and s3.bucket == "bucket" and s3.prefix == "some/prefix/"


async def test_archived_analytics_expire_after_a_year_and_nothing_else_does(
    archive: Archive,
) -> None:
    """Hot 90 days in the database, cold for a year in the archive, then gone."""
    import datetime as dt

    from typogram.db.archiver import expire_cold_analytics

    now = dt.datetime(2027, 3, 15, tzinfo=dt.UTC)
    now_ms = int(now.timestamp() * 1000)
    keys = {
        "user_key_stats/2026-02/aaa.jsonl.gz": True,  # ended 2026-03-01: > 365 days ago
        "user_key_stats/2026-03/bbb.jsonl.gz": False,  # ends 2026-04-01: < 365 days ago
        "user_trend/2025-12/ccc.jsonl.gz": True,
        "user_bigram_stats/2027-01/ddd.jsonl.gz": False,
        "user_confusions/notamonth/eee.jsonl.gz": False,  # not a cold object's key
        "test_results/2025-01.jsonl.gz": False,  # months of results are not analytics
    }
    for key in keys:
        await archive.put(key, b"x")

    dry = await expire_cold_analytics(archive, now_ms, cold_days=365, dry_run=True)
    assert dry["user_key_stats"] == 1 and dry["user_trend"] == 1
    assert len(await archive.list()) == len(keys)  # a dry run deletes nothing

    done = await expire_cold_analytics(archive, now_ms, cold_days=365)
    assert done == dry
    assert await archive.list() == sorted(key for key, gone in keys.items() if not gone)
    with pytest.raises(ValueError):
        await expire_cold_analytics(archive, now_ms, cold_days=0)
