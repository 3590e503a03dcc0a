"""The attachment storages keep one contract; thread delete and purge take the bytes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from chatkit.store import NotFoundError
from chatkit.types import FileAttachment, ThreadMetadata
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.attachments.blobs import (
    BlobStorage,
    DatabaseBlobs,
    DirectoryBlobs,
    S3Blobs,
    open_blobs,
)
from chatkit_backend.attachments.service import Attachments
from chatkit_backend.attachments.setup import rules_from
from chatkit_backend.attachments.signing import UrlSigner
from chatkit_backend.chat.store import SQLStore, new_id
from chatkit_backend.chat.tables import AttachmentRow, ThreadRow
from chatkit_backend.config import ConfigError, load_settings
from chatkit_backend.context import RequestContext
from chatkit_backend.maintenance import purge_threads, purge_unsent_attachments

from .s3_server import S3_ENV, new_bucket, s3_endpoint  # noqa: F401 (a fixture)

CTX = RequestContext(user_id="u1")


@pytest.fixture(params=["database", "directory", "s3"])
def blobs(
    request: pytest.FixtureRequest,
    engine: AsyncEngine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> BlobStorage:
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        for name, value in S3_ENV.items():
            monkeypatch.setenv(name, value)
        s3 = open_blobs(f"s3://{new_bucket(endpoint)}/files", engine, endpoint)
        assert isinstance(s3, S3Blobs)
        return s3
    if request.param == "database":
        storage = open_blobs(None, engine)
        assert isinstance(storage, DatabaseBlobs)
        return storage
    storage = open_blobs(f"file://{tmp_path}/files", engine)
    assert isinstance(storage, DirectoryBlobs)
    return storage


async def test_put_get_replace_delete(blobs: BlobStorage) -> None:
    one, two = new_id("attachment"), new_id("attachment")
    await blobs.put(one, b"first")
    await blobs.put(two, b"\x00" * 1000)
    assert await blobs.get(one) == b"first"
    await blobs.put(one, b"again")
    assert await blobs.get(one) == b"again"
    await blobs.delete([one, "not-a-key", "../../etc/passwd"])
    await blobs.delete([])
    assert await blobs.get(one) is None
    assert await blobs.get(two) == b"\x00" * 1000
    assert await blobs.get("../etc/passwd") is None


async def test_keys_are_never_paths(blobs: BlobStorage) -> None:
    for bad in ("../x", "atc_../../x", "notes.txt", "atc_ABC"):
        with pytest.raises(ValueError):
            await blobs.put(bad, b"x")


def test_attachments_url_is_checked() -> None:
    assert load_settings(attachments_url="file:///var/files").attachments_url == "file:///var/files"
    assert load_settings(attachments_url=" ").attachments_url is None
    assert load_settings(attachments_url="database").attachments_url == "database"
    assert load_settings(attachments_url="s3://b/p").attachments_url == "s3://b/p"
    for bad in ("file://host/x", "file:relative", "ftp://x/y", "s3:///nobucket"):
        with pytest.raises(ConfigError, match="ATTACHMENTS_URL"):
            load_settings(attachments_url=bad)
    with pytest.raises(ValueError, match="unsupported"):
        open_blobs("ftp://x/y", None)  # type: ignore[arg-type]


def test_attachment_types_are_checked() -> None:
    settings = load_settings(attachment_types="image/png, Text/Plain")
    assert settings.attachment_types == ["image/png", "text/plain"]
    with pytest.raises(ConfigError, match="ATTACHMENT_TYPES"):
        load_settings(attachment_types="png")


async def _attachment(store: SQLStore, blobs: BlobStorage, thread_id: str | None) -> str:
    attachment_id = new_id("attachment")
    await store.save_attachment(
        FileAttachment(id=attachment_id, name="a", mime_type="text/plain", thread_id=thread_id),
        CTX,
    )
    await blobs.put(attachment_id, b"bytes")
    return attachment_id


async def test_thread_delete_and_purges_take_the_bytes(
    engine: AsyncEngine, blobs: BlobStorage
) -> None:
    store = SQLStore(engine)
    store.blobs = blobs
    for thread_id in ("thr_deleted", "thr_old"):
        await store.save_thread(ThreadMetadata(id=thread_id, created_at=datetime.now()), CTX)
    in_deleted = await _attachment(store, blobs, "thr_deleted")
    in_old = await _attachment(store, blobs, "thr_old")
    unsent_old = await _attachment(store, blobs, None)
    unsent_new = await _attachment(store, blobs, None)
    # Tied to a thread that was never stored (its request failed before the message was).
    orphan = await _attachment(store, blobs, "thr_never_stored")
    async with engine.begin() as conn:
        await conn.execute(
            update(AttachmentRow)
            .where(AttachmentRow.id.in_([unsent_old, orphan]))
            .values(created_at=datetime.utcnow() - timedelta(days=2))
        )
        await conn.execute(
            update(ThreadRow)
            .where(ThreadRow.id == "thr_old")
            .values(updated_at=datetime.utcnow() - timedelta(days=100))
        )

    await store.delete_thread("thr_deleted", CTX)
    assert await blobs.get(in_deleted) is None

    assert await purge_threads(engine, timedelta(days=30), blobs) == 1
    assert await blobs.get(in_old) is None

    assert await purge_unsent_attachments(engine, blobs) == 2
    assert await blobs.get(unsent_old) is None and await blobs.get(orphan) is None
    assert await blobs.get(unsent_new) == b"bytes"
    assert (await store.load_attachment(unsent_new, CTX)).id == unsent_new


class FailsOnce:
    """A storage whose first delete fails (a network error, a full disk...)."""

    def __init__(self, inner: BlobStorage) -> None:
        self.inner = inner
        self.failed = False

    async def put(self, key: str, data: bytes) -> None:
        await self.inner.put(key, data)

    async def get(self, key: str) -> bytes | None:
        return await self.inner.get(key)

    async def delete(self, keys: Iterable[str]) -> None:
        if not self.failed:
            self.failed = True
            raise OSError("storage unavailable")
        await self.inner.delete(keys)


async def test_a_failed_byte_delete_is_finished_by_purge(engine: AsyncEngine) -> None:
    """Rows go only after their bytes: a storage failing once leaves the attachment out of
    reach but recorded, and purge deletes its bytes and then the row."""
    store = SQLStore(engine)
    inner = open_blobs(None, engine)
    blobs = FailsOnce(inner)
    store.blobs = blobs
    attachments = Attachments(store, blobs, rules_from(load_settings()), UrlSigner("s"))
    alone = await attachments.create_uploaded("a.txt", "text/plain", b"alone", CTX)
    await attachments.delete_attachment(alone.id, CTX)  # the storage fails here
    with pytest.raises(NotFoundError):
        await store.load_attachment(alone.id, CTX)
    assert await inner.get(alone.id) == b"alone"
    async with engine.connect() as conn:
        assert await conn.scalar(select(AttachmentRow.state).where(AttachmentRow.id == alone.id))

    # A thread's attachments: the thread goes, the bytes wait for purge too.
    blobs.failed = False
    await store.save_thread(ThreadMetadata(id="thr_x", created_at=datetime.now()), CTX)
    sent = await attachments.create_uploaded("b.txt", "text/plain", b"sent", CTX)
    await store.save_attachment(sent.model_copy(update={"thread_id": "thr_x"}), CTX)
    await store.delete_thread("thr_x", CTX)
    assert await inner.get(sent.id) == b"sent"

    assert await purge_unsent_attachments(engine, blobs) == 0
    assert await inner.get(alone.id) is None and await inner.get(sent.id) is None
    async with engine.connect() as conn:
        assert (await conn.scalars(select(AttachmentRow.id))).all() == []
