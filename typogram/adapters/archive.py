"""Archive adapters: a local folder (embedded) and S3-compatible object storage.

``archive_url`` picks one: empty or ``file:///path`` for a folder (default:
``<data_dir>/archive``), ``s3://bucket/prefix`` for S3 (endpoint, region and
credentials from settings or the standard ``AWS_*`` environment variables).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path, PurePosixPath
from typing import Any, Self
from urllib.parse import urlparse

from typogram.errors import BackendUnavailable
from typogram.settings import Settings


def _safe_key(key: str) -> str:
    """Refuse keys that could escape the archive root or are empty."""
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts or key.endswith("/"):
        raise ValueError(f"invalid archive key {key!r}")
    return str(path)


class _Counters:
    def __init__(self) -> None:
        self.puts = self.gets = self.bytes_written = 0
        self.closed = False

    def check(self, name: str) -> None:
        if self.closed:
            raise RuntimeError(f"{name} is closed")

    def statistics(self) -> dict[str, float]:
        return {"puts": self.puts, "gets": self.gets, "bytes_written": self.bytes_written}


class LocalArchive:
    """Files under a root folder; writes go through a temporary file and a rename."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._counters = _Counters()

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        if settings.archive_url:
            return cls(urlparse(settings.archive_url).path)
        return cls(Path(settings.data_dir) / "archive")

    async def __aenter__(self) -> Self:
        self._counters.check("LocalArchive")
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._counters.closed = True

    async def ping(self) -> None:
        self._counters.check("LocalArchive")
        if not self.root.is_dir():
            raise RuntimeError(f"archive folder {self.root} is missing")

    def _path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    async def put(self, key: str, data: bytes) -> None:
        self._counters.check("LocalArchive")
        path = self._path(key)
        await asyncio.to_thread(self._write, path, data)
        self._counters.puts += 1
        self._counters.bytes_written += len(data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)

    async def get(self, key: str) -> bytes | None:
        self._counters.check("LocalArchive")
        path = self._path(key)
        self._counters.gets += 1
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def list(self, prefix: str = "") -> list[str]:
        self._counters.check("LocalArchive")

        def walk() -> list[str]:
            keys = (
                str(p.relative_to(self.root).as_posix())
                for p in self.root.rglob("*")
                if p.is_file() and not p.name.endswith(".partial")
            )
            return sorted(k for k in keys if k.startswith(prefix))

        return await asyncio.to_thread(walk)

    async def delete(self, key: str) -> None:
        self._counters.check("LocalArchive")
        await asyncio.to_thread(self._path(key).unlink, True)

    def statistics(self) -> dict[str, float]:
        return self._counters.statistics()


class S3Archive:
    """An S3 bucket (AWS, MinIO, Ceph …) through aiobotocore."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        create_bucket: bool = False,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.bucket = bucket
        self._connect_timeout = connect_timeout_s
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._endpoint = endpoint_url
        self._region = region
        self._create_bucket = create_bucket
        self._client: Any = None
        self._client_cm: Any = None
        self._counters = _Counters()

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        parsed = urlparse(settings.archive_url)
        return cls(
            parsed.netloc,
            prefix=parsed.path,
            endpoint_url=settings.archive_endpoint_url or None,
            region=settings.archive_region or None,
            create_bucket=settings.archive_create_bucket,
            connect_timeout_s=settings.backend_connect_timeout_s,
        )

    async def __aenter__(self) -> Self:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        self._counters.check("S3Archive")
        config = AioConfig(
            connect_timeout=self._connect_timeout,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        self._client_cm = get_session().create_client(
            "s3", endpoint_url=self._endpoint, region_name=self._region, config=config
        )
        self._client = await self._client_cm.__aenter__()
        try:
            if self._create_bucket:
                await self._ensure_bucket()
            await self.ping()
        except Exception as exc:
            await self.__aexit__(None, None, None)
            target = f"s3://{self.bucket}/{self.prefix}"
            raise BackendUnavailable("archive", target, str(exc).splitlines()[0][:200]) from exc
        return self

    async def _ensure_bucket(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except Exception:
            await self._client.create_bucket(Bucket=self.bucket)

    async def __aexit__(self, *exc: object) -> None:
        if self._client_cm is not None:
            await self._client_cm.__aexit__(None, None, None)
        self._client = self._client_cm = None
        self._counters.closed = True

    def _require(self) -> Any:
        self._counters.check("S3Archive")
        if self._client is None:
            raise RuntimeError("S3Archive is not open")
        return self._client

    async def ping(self) -> None:
        await self._require().head_bucket(Bucket=self.bucket)

    async def put(self, key: str, data: bytes) -> None:
        await self._require().put_object(
            Bucket=self.bucket, Key=self.prefix + _safe_key(key), Body=data
        )
        self._counters.puts += 1
        self._counters.bytes_written += len(data)

    async def get(self, key: str) -> bytes | None:
        client = self._require()
        self._counters.gets += 1
        try:
            response = await client.get_object(Bucket=self.bucket, Key=self.prefix + _safe_key(key))
        except client.exceptions.NoSuchKey:
            return None
        async with response["Body"] as body:
            data: bytes = await body.read()
            return data

    async def list(self, prefix: str = "") -> list[str]:
        client = self._require()
        keys: list[str] = []
        paginator = client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            keys.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents", ()))
        return sorted(keys)

    async def delete(self, key: str) -> None:
        await self._require().delete_object(Bucket=self.bucket, Key=self.prefix + _safe_key(key))

    def statistics(self) -> dict[str, float]:
        return self._counters.statistics()


def archive_from_settings(settings: Settings) -> LocalArchive | S3Archive:
    if settings.archive_url.startswith("s3://"):
        return S3Archive.from_settings(settings)
    return LocalArchive.from_settings(settings)
