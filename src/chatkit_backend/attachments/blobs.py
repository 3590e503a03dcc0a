"""Where attachment bytes live, behind one small interface chosen by ATTACHMENTS_URL.

- unset / `database`: a table of the service database (SQLite or PostgreSQL), so N
  instances on one PostgreSQL share the bytes with nothing more to run;
- `file:///path`: one file per attachment in a local directory;
- `s3://bucket/prefix`: an S3-compatible object store (AWS, MinIO, R2, ...) through
  obstore, credentials from the usual AWS_* variables, ATTACHMENTS_S3_ENDPOINT for a
  store other than AWS.

Blobs are keyed by the attachment id (server-generated, `atc_` + hex): a file name
given by a user is never part of a path.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit
from uuid import uuid4

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .tables import AttachmentBlobRow

if TYPE_CHECKING:
    from obstore.store import ClientConfig

# The only keys ever stored: what store.new_id("attachment") makes.
_KEY = re.compile(r"^atc_[0-9a-f]{8,64}$")


class BlobStorage(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def delete(self, keys: Iterable[str]) -> None: ...


def _checked(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(f"not an attachment key: {key!r}")
    return key


class DatabaseBlobs:
    """Bytes in the `attachment_blobs` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def put(self, key: str, data: bytes) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(AttachmentBlobRow).where(AttachmentBlobRow.id == key))
            await conn.execute(insert(AttachmentBlobRow).values(id=_checked(key), data=data))

    async def get(self, key: str) -> bytes | None:
        async with self.engine.connect() as conn:
            data = await conn.scalar(
                select(AttachmentBlobRow.data).where(AttachmentBlobRow.id == key)
            )
        return bytes(data) if data is not None else None

    async def delete(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            async with self.engine.begin() as conn:
                await conn.execute(delete(AttachmentBlobRow).where(AttachmentBlobRow.id.in_(keys)))


class DirectoryBlobs:
    """Bytes as files named by attachment id in one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _checked(key)

    def _write(self, key: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed, so a reader never sees half a file.
        partial = self.root / f".{uuid4().hex}.part"
        try:
            # Owner-only: users' files are not for the machine's other accounts.
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(partial, self._path(key))
        finally:
            partial.unlink(missing_ok=True)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, key, data)

    def _read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    async def get(self, key: str) -> bytes | None:
        if not _KEY.match(key):
            return None
        return await asyncio.to_thread(self._read, key)

    def _remove(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    async def delete(self, keys: Iterable[str]) -> None:
        await asyncio.to_thread(self._remove, [k for k in keys if _KEY.match(k)])


class S3Blobs:
    """Bytes as objects named by attachment id under the URL's prefix."""

    def __init__(self, url: str, endpoint: str | None = None) -> None:
        from obstore.store import S3Store

        # A MinIO on a private network often speaks plain HTTP; obstore refuses it unasked.
        options: ClientConfig = {"allow_http": endpoint.startswith("http://")} if endpoint else {}
        if endpoint:
            self.store = S3Store.from_url(url, client_options=options, endpoint=endpoint)
        else:
            self.store = S3Store.from_url(url)

    async def put(self, key: str, data: bytes) -> None:
        import obstore

        await obstore.put_async(self.store, _checked(key), data)

    async def get(self, key: str) -> bytes | None:
        import obstore

        if not _KEY.match(key):
            return None
        try:
            result = await obstore.get_async(self.store, key)
            return bytes(await result.bytes_async())
        except FileNotFoundError:  # (what obstore's NotFoundError is)
            return None

    async def delete(self, keys: Iterable[str]) -> None:
        import obstore

        keys = [k for k in keys if _KEY.match(k)]
        if keys:
            # (Deleting a missing object is no error on S3.)
            await obstore.delete_async(self.store, keys)


def open_blobs(url: str | None, engine: AsyncEngine, s3_endpoint: str | None = None) -> BlobStorage:
    """The storage ATTACHMENTS_URL names (validated in config.py)."""
    if not url or url == "database":
        return DatabaseBlobs(engine)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return DirectoryBlobs(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        return S3Blobs(url, s3_endpoint)
    raise ValueError(f"unsupported ATTACHMENTS_URL scheme: {parts.scheme}")
