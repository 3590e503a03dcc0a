"""The statements of the store's hot paths, built once per database dialect.

Every turn saves a thread, writes items and reads a page of them; a statement built
anew each time costs SQLAlchemy about 0.2 ms to build and key, more than SQLite takes
to run it (db.insert_params). These are built once and executed with a dict of values;
the names of their bind parameters are the dict's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Integer, Select, Update, and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql

from ..db import Insert, insert_params, prefixed_row
from .tables import ItemRow, ThreadRow

THREAD_COLUMNS = ("id", "user_id", "title", "created_at", "updated_at", "data")
ITEM_COLUMNS = ("id", "thread_id", "user_id", "type", "created_at", "data")
# The item's values in touch_and_save_item (db.prefixed_row).
ITEM_PREFIX = "item_"


@dataclass(frozen=True)
class StoreStatements:
    # thread_id, owner_id
    load_thread: Select[Any]
    # THREAD_COLUMNS; updates title, data and updated_at of the user's own thread only
    save_thread: Insert
    # thread_id, owner_id, updated_at
    touch_thread: Update
    # ITEM_COLUMNS; updates data and type of an item of that same user and thread only
    save_item: Insert
    # PostgreSQL: touch_thread and save_item in one statement (ITEM_PREFIX + each of
    # ITEM_COLUMNS, thread_id, owner_id, updated_at); answers 1 if the user's thread was
    # there (and the item written, unless its id is another thread's or user's), else 0
    touch_and_save_item: Select[Any] | None
    # thread_id, user_id, limit (the first page of a thread's items, either order)
    items_desc: Select[Any]
    items_asc: Select[Any]
    # user_id, limit (the first page of a user's threads by last activity, either order)
    threads_desc: Select[Any]
    threads_asc: Select[Any]


def _item_upsert(insert: Insert) -> Insert:
    """`insert` of an item, updating data and type of an item of that same user and
    thread only."""
    items = ItemRow.__table__.c
    return insert.on_conflict_do_update(
        index_elements=["id"],
        set_={"data": insert.excluded.data, "type": insert.excluded.type},
        # Never let an id, however it was obtained, overwrite someone else's row.
        where=and_(
            items.user_id == insert.excluded.user_id,
            items.thread_id == insert.excluded.thread_id,
        ),
    )


def _touch_and_save_item(touch_thread: Update) -> Select[Any]:
    """One statement for a turn's item write on PostgreSQL, run without a transaction
    around it (it is atomic on its own): one round trip where BEGIN, two statements and
    COMMIT took four, each of them a wait for a busy event loop. The item is written only
    if the thread was touched, that is, if it is the user's."""
    touched = touch_thread.returning(ThreadRow.__table__.c.id).cte("touched")
    values = prefixed_row(ItemRow.__table__, ITEM_COLUMNS, ITEM_PREFIX)
    saved = _item_upsert(
        postgresql.insert(ItemRow).from_select(ITEM_COLUMNS, values.select_from(touched))
    )
    saved_ids = saved.returning(ItemRow.__table__.c.id).cte("saved")
    return select(func.count()).select_from(touched).add_cte(saved_ids)


@cache
def store_statements(dialect: str) -> StoreStatements:
    threads, items = ThreadRow.__table__.c, ItemRow.__table__.c

    save_thread = insert_params(dialect, ThreadRow.__table__, THREAD_COLUMNS)
    save_thread = save_thread.on_conflict_do_update(
        index_elements=["id"],
        set_={
            "title": save_thread.excluded.title,
            "data": save_thread.excluded.data,
            "updated_at": save_thread.excluded.updated_at,
        },
        where=threads.user_id == save_thread.excluded.user_id,
    )

    save_item = _item_upsert(insert_params(dialect, ItemRow.__table__, ITEM_COLUMNS))

    # (An UPDATE reserves its table's column names for its SET values: hence `owner_id`.)
    thread_of = and_(threads.id == bindparam("thread_id"), threads.user_id == bindparam("owner_id"))
    touch_thread = update(ThreadRow).where(thread_of).values(updated_at=bindparam("updated_at"))
    thread_items = select(items.id, items.data).where(
        items.thread_id == bindparam("thread_id"), items.user_id == bindparam("user_id")
    )
    user_threads = select(threads.id, threads.data).where(threads.user_id == bindparam("user_id"))
    limit = bindparam("limit", type_=Integer)
    return StoreStatements(
        load_thread=select(threads.data).where(thread_of),
        save_thread=save_thread,
        touch_thread=touch_thread,
        save_item=save_item,
        touch_and_save_item=(
            _touch_and_save_item(touch_thread) if dialect == "postgresql" else None
        ),
        items_desc=thread_items.order_by(items.created_at.desc(), items.seq.desc()).limit(limit),
        items_asc=thread_items.order_by(items.created_at, items.seq).limit(limit),
        # Last activity (updated_at) first, like REST /api/conversations: a thread written
        # in moves to the top of the history. seq breaks ties, so pages neither skip nor
        # repeat.
        threads_desc=user_threads.order_by(threads.updated_at.desc(), threads.seq.desc()).limit(
            limit
        ),
        threads_asc=user_threads.order_by(threads.updated_at, threads.seq).limit(limit),
    )
