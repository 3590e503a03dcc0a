"""Operator jobs: purge old threads with everything that hangs off them, and attachments
uploaded but never sent in a message."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .attachments.records import remove_deleted, sweep_deleting
from .chat.tables import DELETING, AttachmentRow, FeedbackRow, ItemRow, ThreadRow
from .db import utcnow
from .runs.tables import ActiveRunRow, UsageRow

if TYPE_CHECKING:
    from .attachments.blobs import BlobStorage

BATCH = 500
# An attachment not sent in a message within this long was abandoned in the composer.
UNSENT_ATTACHMENT_AGE = timedelta(days=1)


async def purge_unsent_attachments(
    engine: AsyncEngine, blobs: BlobStorage, older_than: timedelta = UNSENT_ATTACHMENT_AGE
) -> int:
    """Delete attachments (record and bytes) never sent in a message, or tied to a thread
    that was never stored (a request that failed before its message was); return how
    many. Then finish the deletes a failing storage interrupted (attachments/records.py)."""
    cutoff = utcnow() - older_than
    purged = 0
    while True:
        async with engine.begin() as conn:
            ids = list(
                await conn.scalars(
                    select(AttachmentRow.id)
                    .where(
                        or_(
                            AttachmentRow.thread_id.is_(None),
                            AttachmentRow.thread_id.not_in(select(ThreadRow.id)),
                        ),
                        AttachmentRow.created_at < cutoff,
                        AttachmentRow.state != DELETING,
                    )
                    .limit(BATCH)
                )
            )
            if ids:
                await conn.execute(
                    update(AttachmentRow).where(AttachmentRow.id.in_(ids)).values(state=DELETING)
                )
        if not ids:
            await sweep_deleting(engine, blobs)
            return purged
        if not await remove_deleted(engine, blobs, ids):
            return purged + len(ids)  # the storage fails: the next purge finishes these
        purged += len(ids)


async def purge_threads(
    engine: AsyncEngine, older_than: timedelta, blobs: BlobStorage | None = None
) -> int:
    """Delete threads with no activity for `older_than`, in batches; return how many.

    A thread with a run in progress is left alone whatever its age. With `blobs`, the
    bytes of the threads' attachments go too.
    """
    cutoff = utcnow() - older_than
    purged = 0
    while True:
        async with engine.begin() as conn:
            ids = list(
                await conn.scalars(
                    select(ThreadRow.id)
                    .where(
                        ThreadRow.updated_at < cutoff,
                        ThreadRow.id.not_in(select(ActiveRunRow.thread_id)),
                    )
                    .limit(BATCH)
                )
            )
            if not ids:
                return purged
            files = list(
                await conn.scalars(select(AttachmentRow.id).where(AttachmentRow.thread_id.in_(ids)))
            )
            for table in (ItemRow, FeedbackRow, UsageRow):
                await conn.execute(delete(table).where(table.thread_id.in_(ids)))
            # Attachment rows go after their bytes (records.py).
            await conn.execute(
                update(AttachmentRow).where(AttachmentRow.id.in_(files)).values(state=DELETING)
            )
            await conn.execute(delete(ThreadRow).where(ThreadRow.id.in_(ids)))
        await remove_deleted(engine, blobs, files)
        purged += len(ids)
