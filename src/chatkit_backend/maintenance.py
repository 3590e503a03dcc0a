"""Operator jobs: purge old threads with everything that hangs off them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .chat.tables import AttachmentRow, FeedbackRow, ItemRow, ThreadRow
from .db import utcnow
from .runs.tables import ActiveRunRow, UsageRow

BATCH = 500


async def purge_threads(engine: AsyncEngine, older_than: timedelta) -> int:
    """Delete threads with no activity for `older_than`, in batches; return how many.

    A thread with a run in progress is left alone whatever its age.
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
            for table in (ItemRow, AttachmentRow, FeedbackRow, UsageRow):
                await conn.execute(delete(table).where(table.thread_id.in_(ids)))
            await conn.execute(delete(ThreadRow).where(ThreadRow.id.in_(ids)))
        purged += len(ids)
