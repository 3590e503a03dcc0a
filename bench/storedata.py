"""Bulk rows for the store-scale benchmark, written straight into `threads` / `thread_items`.

The column set comes from `chatkit_backend.chat.tables` (the schema the server's
migrations create); `data` is the JSON the store itself writes for a ThreadMetadata
and for user/assistant messages, so the server reads these rows like its own.
SQLite is filled with the stdlib driver in one transaction, PostgreSQL with COPY.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    InferenceOptions,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)

from chatkit_backend.auth import LOCAL_USER_ID
from chatkit_backend.chat.tables import ItemRow, ThreadRow

THREAD_COLUMNS = ("id", "user_id", "title", "created_at", "updated_at", "data")
ITEM_COLUMNS = ("id", "thread_id", "user_id", "type", "created_at", "data")
BASE_TIME = datetime(2024, 1, 1)
# The thread the item benchmarks page through; it gets this many items.
HOT_THREAD_ITEMS = 200
_ID, _THREAD, _TIME = "@@ID@@", "@@THREAD@@", "@@TIME@@"


@dataclass
class Seeded:
    threads: int
    items: int
    hot_thread: str
    seconds: float


def _check_schema() -> None:
    for table, columns in (
        (ThreadRow.__table__, THREAD_COLUMNS),
        (ItemRow.__table__, ITEM_COLUMNS),
    ):
        missing = set(columns) - set(table.c.keys())
        if missing:
            raise RuntimeError(f"{table.name} has no column(s) {sorted(missing)}: update bench/")


def _templates() -> tuple[str, str, str]:
    when = datetime(2000, 1, 1, tzinfo=UTC)
    thread = ThreadMetadata(id=_ID, title="Seeded thread", created_at=when).model_dump_json()
    user = UserMessageItem(
        id=_ID,
        thread_id=_THREAD,
        created_at=when,
        content=[UserMessageTextContent(text="Remind me to water the plants tomorrow morning.")],
        attachments=[],
        inference_options=InferenceOptions(),
    ).model_dump_json()
    assistant = AssistantMessageItem(
        id=_ID,
        thread_id=_THREAD,
        created_at=when,
        content=[AssistantMessageContent(text="Done: 'Water the plants' is due tomorrow.")],
    ).model_dump_json()
    stamp = when.isoformat().replace("+00:00", "Z")
    return tuple(t.replace(stamp, _TIME) for t in (thread, user, assistant))  # type: ignore[return-value]


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def rows(
    threads: int, items: int
) -> tuple[str, Iterator[tuple[Any, ...]], Iterator[tuple[Any, ...]]]:
    """(hot thread id, thread rows, item rows); created_at is naive UTC, as the store keeps it."""
    _check_schema()
    t_thread, t_user, t_assistant = _templates()
    ids = [f"thr_{uuid.uuid4().hex}" for _ in range(threads)]
    hot = ids[-1]

    def thread_rows() -> Iterator[tuple[Any, ...]]:
        for n, tid in enumerate(ids):
            created = BASE_TIME + timedelta(seconds=n)
            data = t_thread.replace(_ID, tid).replace(_TIME, _iso(created))
            yield (tid, LOCAL_USER_ID, "Seeded thread", created, created, data)

    def item_rows() -> Iterator[tuple[Any, ...]]:
        rest = max(0, items - HOT_THREAD_ITEMS)
        for n in range(items):
            if n < rest:
                tid, position = ids[n % threads], n // threads
                created = BASE_TIME + timedelta(seconds=n % threads, milliseconds=position)
            else:
                tid, position = hot, n - rest
                created = BASE_TIME + timedelta(days=1, seconds=position)
            template, kind = (
                (t_user, "user_message") if n % 2 == 0 else (t_assistant, "assistant_message")
            )
            iid = f"msg_{uuid.uuid4().hex}"
            data = template.replace(_ID, iid).replace(_THREAD, tid).replace(_TIME, _iso(created))
            yield (iid, tid, LOCAL_USER_ID, kind, created, data)

    return hot, thread_rows(), item_rows()


def _sqlite_time(moment: datetime) -> str:
    # SQLAlchemy's storage format for DateTime on SQLite.
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def seed_sqlite(path: str, threads: int, items: int) -> Seeded:
    began = time.perf_counter()
    hot, thread_rows, item_rows = rows(threads, items)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        with conn:
            conn.executemany(
                f"INSERT INTO threads ({', '.join(THREAD_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (r[0], r[1], r[2], _sqlite_time(r[3]), _sqlite_time(r[4]), r[5])
                    for r in thread_rows
                ),
            )
            conn.executemany(
                f"INSERT INTO thread_items ({', '.join(ITEM_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)",
                ((*r[:4], _sqlite_time(r[4]), r[5]) for r in item_rows),
            )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return Seeded(threads, items, hot, time.perf_counter() - began)


async def seed_postgres(url: str, threads: int, items: int) -> Seeded:
    import asyncpg

    began = time.perf_counter()
    hot, thread_rows, item_rows = rows(threads, items)
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.copy_records_to_table("threads", records=thread_rows, columns=THREAD_COLUMNS)
        await conn.copy_records_to_table("thread_items", records=item_rows, columns=ITEM_COLUMNS)
        # What autovacuum would have done by then on a database of this size.
        await conn.execute("ANALYZE threads")
        await conn.execute("ANALYZE thread_items")
    finally:
        await conn.close()
    return Seeded(threads, items, hot, time.perf_counter() - began)
