"""Finished recordings on S3-compatible object storage.

A recording is written to the local recordings directory while the call lasts (that
directory is then only a spool: an ``emptyDir`` is enough) and uploaded once finished,
under the key ``<prefix><tenant>/<yyyy>/<mm>/<call>.wav``. The month is the call's start,
read from its id (a UUIDv7, as the gateway makes them), so the REST edge's lookup, which
knows only the tenant and the call, finds the key without listing the bucket.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from voicebus.contracts.ids import id_time_ms
from voicebus.recorder.errors import RecorderError
from voicebus.recorder.settings import RecorderSettings

_CONTENT_RANGE = re.compile(r"bytes \d+-\d+/(\d+)")
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_RANGE_NOT_SATISFIABLE = "InvalidRange"


class ArchiveError(RecorderError):
    """The object store refused or failed a request (the message names the operation)."""


def recording_key(
    tenant_id: str, call_id: str, filename: str | None = None, prefix: str = ""
) -> str:
    """``<prefix><tenant>/<yyyy>/<mm>/<filename>`` (``<call>.wav`` by default).

    The month comes from the call id (UUIDv7); an id that is not one is filed under
    ``<tenant>/undated/``.
    """
    name = filename or f"{call_id}.wav"
    try:
        parsed = uuid.UUID(call_id)
    except ValueError:
        parsed = None
    if parsed is None or parsed.version != 7:
        return f"{prefix}{tenant_id}/undated/{name}"
    started = datetime.fromtimestamp(id_time_ms(call_id) / 1000, tz=UTC)
    return f"{prefix}{tenant_id}/{started:%Y}/{started:%m}/{name}"


class RecordingStore(Protocol):
    """Where finished recordings are kept (an object store)."""

    def uri(self, key: str) -> str:
        """The URI events name a stored recording by."""
        ...

    async def put(self, key: str, path: Path) -> None:
        """Upload the file at ``path`` under ``key``."""
        ...

    async def size(self, key: str) -> int | None:
        """The stored object's size in bytes, or None when there is none."""
        ...

    async def read(self, key: str, offset: int, length: int) -> tuple[bytes, int]:
        """Up to ``length`` bytes from ``offset``, and the object's total size.

        Raises:
            FileNotFoundError: no such object.
        """
        ...

    async def delete(self, key: str) -> bool:
        """Delete the object under ``key``; False when there was none."""
        ...

    async def listing(self, prefix: str) -> list[tuple[str, datetime]]:
        """Every object under ``prefix``: its key and when it was stored."""
        ...


class S3Store:
    """A bucket of an S3-compatible store (AWS S3, MinIO, Ceph RGW, ...) through boto3.

    boto3 is blocking: every request runs in a worker thread (its clients are thread-safe).
    """

    def __init__(self, settings: RecorderSettings) -> None:
        if not settings.s3_bucket:
            raise ValueError("VB_RECORDER_S3_BUCKET is not set")
        self.bucket = settings.s3_bucket
        secret = settings.s3_secret_access_key
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
            ),
        )

    def uri(self, key: str) -> str:
        """``s3://<bucket>/<key>``."""
        return f"s3://{self.bucket}/{key}"

    async def put(self, key: str, path: Path) -> None:
        """Upload ``path`` (multipart above 8 MiB, as boto3 does)."""
        try:
            await asyncio.to_thread(
                self._client.upload_file,
                str(path),
                self.bucket,
                key,
                ExtraArgs={"ContentType": "audio/wav"},
            )
        except (BotoCoreError, ClientError, Boto3Error, OSError) as exc:
            # boto3's transfer manager wraps a refused PUT in S3UploadFailedError (Boto3Error).
            raise ArchiveError(f"upload of {key} to bucket {self.bucket} failed: {exc}") from exc

    async def size(self, key: str) -> int | None:
        """``HeadObject``'s ContentLength, or None for a missing key."""
        try:
            head = await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                return None
            raise ArchiveError(f"head of {key} in bucket {self.bucket} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise ArchiveError(f"head of {key} in bucket {self.bucket} failed: {exc}") from exc
        return int(head["ContentLength"])

    async def read(self, key: str, offset: int, length: int) -> tuple[bytes, int]:
        """A ranged ``GetObject``; past the end, no bytes and the size."""
        if length <= 0:
            size = await self.size(key)
            if size is None:
                raise FileNotFoundError(key)
            return b"", size
        byte_range = f"bytes={offset}-{offset + length - 1}"
        try:
            return await asyncio.to_thread(self._get, key, byte_range)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in _MISSING:
                raise FileNotFoundError(key) from None
            if code == _RANGE_NOT_SATISFIABLE:
                size = await self.size(key)
                if size is None:
                    raise FileNotFoundError(key) from None
                return b"", size
            raise ArchiveError(f"read of {key} in bucket {self.bucket} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise ArchiveError(f"read of {key} in bucket {self.bucket} failed: {exc}") from exc

    async def delete(self, key: str) -> bool:
        """``HeadObject`` (was there one?), then ``DeleteObject``."""
        if await self.size(key) is None:
            return False
        try:
            await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveError(f"delete of {key} in bucket {self.bucket} failed: {exc}") from exc
        return True

    async def listing(self, prefix: str) -> list[tuple[str, datetime]]:
        """``ListObjectsV2`` page by page."""
        try:
            return await asyncio.to_thread(self._list, prefix)
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveError(f"list of {prefix} in bucket {self.bucket} failed: {exc}") from exc

    def _list(self, prefix: str) -> list[tuple[str, datetime]]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return [
            (str(item["Key"]), item["LastModified"])
            for page in pages
            for item in page.get("Contents", [])
        ]

    def _get(self, key: str, byte_range: str) -> tuple[bytes, int]:
        answer = self._client.get_object(Bucket=self.bucket, Key=key, Range=byte_range)
        data: bytes = answer["Body"].read()
        match = _CONTENT_RANGE.fullmatch(str(answer.get("ContentRange", "")))
        total = int(match.group(1)) if match else int(answer["ContentLength"])
        return data, total
