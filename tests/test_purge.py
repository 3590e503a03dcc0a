"""`chatkit-backend purge`: old threads go with their items, attachments, feedback, usage."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    FileAttachment,
    ThreadMetadata,
)
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.chat.store import SQLStore
from chatkit_backend.chat.tables import AttachmentRow, FeedbackRow, ItemRow, ThreadRow
from chatkit_backend.context import RequestContext
from chatkit_backend.runs.tables import ActiveRunRow, UsageRow
from chatkit_backend.runs.usage import RunUsage, record_usage

from .processes import clean_env, run_cli

CTX = RequestContext(user_id="u1")


async def seed(store: SQLStore, engine: AsyncEngine, thread_id: str, *, age_days: int) -> None:
    await store.save_thread(ThreadMetadata(id=thread_id, created_at=datetime.now()), CTX)
    item = AssistantMessageItem(
        id=f"msg_{thread_id}",
        thread_id=thread_id,
        created_at=datetime.now(),
        content=[AssistantMessageContent(text="hi")],
    )
    await store.add_thread_item(thread_id, item, CTX)
    await store.save_attachment(
        FileAttachment(
            id=f"atc_{thread_id}", name="a", mime_type="text/plain", thread_id=thread_id
        ),
        CTX,
    )
    await store.save_feedback(thread_id, [item.id], "positive", CTX)
    await record_usage(
        engine,
        RunUsage(
            user_id="u1",
            thread_id=thread_id,
            run_id=thread_id,
            model="m",
            input_tokens=1,
            output_tokens=1,
            duration_ms=1,
        ),
    )
    async with engine.begin() as conn:
        await conn.execute(
            update(ThreadRow)
            .where(ThreadRow.id == thread_id)
            .values(updated_at=datetime.utcnow() - timedelta(days=age_days))
        )


async def count(engine: AsyncEngine, table: type, thread_id: str) -> int:
    async with engine.connect() as conn:
        column = table.id if table is ThreadRow else table.thread_id  # type: ignore[attr-defined]
        return int(await conn.scalar(select(func.count()).where(column == thread_id)) or 0)


async def test_purge_removes_old_threads_and_everything_attached(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    store = SQLStore(engine)
    await seed(store, engine, "thr_old", age_days=100)
    await seed(store, engine, "thr_busy", age_days=100)
    await seed(store, engine, "thr_new", age_days=10)
    async with engine.begin() as conn:
        now = datetime.utcnow()
        await conn.execute(
            ActiveRunRow.__table__.insert().values(
                thread_id="thr_busy",
                run_id="r1",
                user_id="u1",
                instance="x",
                started_at=now,
                heartbeat_at=now,
                stop_requested=False,
            )
        )

    result = run_cli(
        "purge", "--older-than", "90d", env=clean_env(DATABASE_URL=database_url), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "purged 1 thread" in result.stdout
    assert "purged 0 attachments never sent in a message within a day" in result.stdout

    for table in (ThreadRow, ItemRow, AttachmentRow, FeedbackRow, UsageRow):
        assert await count(engine, table, "thr_old") == 0, table
        assert await count(engine, table, "thr_new") == 1, table
        assert await count(engine, table, "thr_busy") == 1, table

    bad = run_cli(
        "purge", "--older-than", "soon", env=clean_env(DATABASE_URL=database_url), cwd=tmp_path
    )
    assert bad.returncode == 2 and "duration" in bad.stderr
