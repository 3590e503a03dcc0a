"""The life of an attachment record, each step one compare-and-set UPDATE.

    pending --claim_upload--> uploading --finish_upload--> ready --claim_for_thread--> in a thread
       any state but in a thread --mark_deleting--> deleting --(bytes gone)--> row removed

Two requests racing for the same step both run the same `UPDATE ... WHERE state = ?`;
the database lets exactly one of them change the row (rowcount 1), the other sees 0 and
gets a clear 409 (or 404 when the attachment is gone). Bytes are only written while a
row holds the attachment in `uploading`, and a row is only removed after its bytes, so
no bytes are ever left without a record (purge sweeps rows a failed delete left in
`deleting`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..chat.tables import DELETING, PENDING, READY, UPLOADING, AttachmentRow
from ..errors import Conflict, NotFound
from ..sqlite_writes import writing

if TYPE_CHECKING:
    from chatkit.types import Attachment

    from ..chat.store import SQLStore
    from .blobs import BlobStorage

log = logging.getLogger(__name__)

SWEEP_BATCH = 500


def not_found(attachment_id: str) -> NotFound:
    return NotFound(f"Attachment {attachment_id} not found.", code="attachment_not_found")


def _mine(attachment_id: str, user_id: str) -> ColumnElement[bool]:
    return and_(AttachmentRow.id == attachment_id, AttachmentRow.user_id == user_id)


async def _seen(conn: AsyncConnection, attachment_id: str, user_id: str) -> tuple[str, str | None]:
    """(state, thread_id) of a live attachment of this user, for the loser's error."""
    row = (
        await conn.execute(
            select(AttachmentRow.state, AttachmentRow.thread_id).where(
                _mine(attachment_id, user_id), AttachmentRow.state != DELETING
            )
        )
    ).first()
    if row is None:
        raise not_found(attachment_id)
    return row.state, row.thread_id


# uploads ------------------------------------------------------------------


async def claim_upload(store: SQLStore, attachment_id: str, user_id: str) -> None:
    """Hold a created attachment for this upload; another upload of it gets 409."""
    async with store._write() as conn:
        result = await conn.execute(
            update(AttachmentRow)
            .where(_mine(attachment_id, user_id), AttachmentRow.state == PENDING)
            .values(state=UPLOADING)
        )
        if result.rowcount == 1:
            return
        state, _ = await _seen(conn, attachment_id, user_id)
    if state == UPLOADING:
        raise Conflict(
            f"Attachment {attachment_id} is being uploaded by another request.",
            code="upload_in_progress",
        )
    raise Conflict(f"Attachment {attachment_id} is already uploaded.", code="already_uploaded")


async def release_upload(store: SQLStore, attachment_id: str, user_id: str) -> None:
    """An upload that failed after its claim: the attachment can be uploaded again."""
    async with store._write() as conn:
        await conn.execute(
            update(AttachmentRow)
            .where(_mine(attachment_id, user_id), AttachmentRow.state == UPLOADING)
            .values(state=PENDING)
        )


async def finish_upload(store: SQLStore, attachment: Attachment, user_id: str) -> bool:
    """The bytes are stored: the record says so. False when it was deleted meanwhile."""
    async with store._write() as conn:
        result = await conn.execute(
            update(AttachmentRow)
            .where(_mine(attachment.id, user_id), AttachmentRow.state == UPLOADING)
            .values(state=READY, data=attachment.model_dump_json())
        )
    return bool(result.rowcount == 1)


# first use in a message ---------------------------------------------------


async def claim_for_thread(
    store: SQLStore, attachment_ids: Sequence[str], thread_id: str, user_id: str
) -> list[str]:
    """Tie uploaded attachments to the thread a message is about to be stored in.

    All or none (one transaction). Returns the ids this call tied (not those already in
    this thread), for `release_from_thread` if the message is then not stored.
    """
    claimed: list[str] = []
    async with store._write() as conn:
        # Rows locked in one order by every message, so two messages sharing attachments
        # cannot deadlock on PostgreSQL (one waits, then finds them taken).
        for attachment_id in sorted(attachment_ids):
            result = await conn.execute(
                update(AttachmentRow)
                .where(
                    _mine(attachment_id, user_id),
                    AttachmentRow.state == READY,
                    AttachmentRow.thread_id.is_(None),
                )
                .values(thread_id=thread_id)
            )
            if result.rowcount == 1:
                claimed.append(attachment_id)
                continue
            state, in_thread = await _seen(conn, attachment_id, user_id)
            if state != READY:
                raise Conflict(
                    f"Attachment {attachment_id} has not finished uploading.",
                    code="attachment_not_uploaded",
                )
            if in_thread != thread_id:
                raise Conflict(
                    f"Attachment {attachment_id} belongs to another conversation.",
                    code="attachment_in_use",
                )
    return claimed


async def release_from_thread(
    store: SQLStore, attachment_ids: Sequence[str], thread_id: str, user_id: str
) -> None:
    if not attachment_ids:
        return
    async with store._write() as conn:
        await conn.execute(
            update(AttachmentRow)
            .where(
                AttachmentRow.id.in_(list(attachment_ids)),
                AttachmentRow.user_id == user_id,
                AttachmentRow.thread_id == thread_id,
            )
            .values(thread_id=None)
        )


# deleting ----------------------------------------------------------------


async def mark_deleting(store: SQLStore, attachment_id: str, user_id: str) -> None:
    """Take an attachment not (yet) sent in a message out of reach, before its bytes go.

    One sent in a message is part of that conversation: deleting the thread removes it.
    """
    async with store._write() as conn:
        result = await conn.execute(
            update(AttachmentRow)
            .where(
                _mine(attachment_id, user_id),
                AttachmentRow.state != DELETING,
                AttachmentRow.thread_id.is_(None),
            )
            .values(state=DELETING)
        )
        if result.rowcount == 1:
            return
        await _seen(conn, attachment_id, user_id)  # 404 when missing
    raise Conflict(
        f"Attachment {attachment_id} was sent in a message; delete the conversation instead.",
        code="attachment_in_use",
    )


async def remove_deleted(
    engine: AsyncEngine, blobs: BlobStorage | None, attachment_ids: Sequence[str]
) -> bool:
    """Bytes first, then the rows marked `deleting`. A storage failure leaves the rows
    for purge to sweep (logged); returns whether everything went."""
    ids = list(attachment_ids)
    if not ids:
        return True
    if blobs is not None:
        try:
            await blobs.delete(ids)
        except Exception as exc:
            log.warning(
                "attachment bytes could not be deleted (%s); purge will retry %d of them",
                type(exc).__name__,
                len(ids),
            )
            return False
    async with writing(engine) as conn:
        await conn.execute(
            delete(AttachmentRow).where(AttachmentRow.id.in_(ids), AttachmentRow.state == DELETING)
        )
    return True


async def sweep_deleting(engine: AsyncEngine, blobs: BlobStorage | None) -> int:
    """Finish every delete a storage failure interrupted; return how many rows went."""
    swept = 0
    while True:
        async with engine.connect() as conn:
            ids = list(
                await conn.scalars(
                    select(AttachmentRow.id)
                    .where(AttachmentRow.state == DELETING)
                    .limit(SWEEP_BATCH)
                )
            )
        if not ids or not await remove_deleted(engine, blobs, ids):
            return swept
        swept += len(ids)
