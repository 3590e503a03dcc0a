"""The ChatKit `Store` on SQL: one code path for SQLite (aiosqlite) and PostgreSQL (asyncpg).

Every query is scoped to the user in the request context: another user's thread,
item or attachment behaves exactly as if it did not exist.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import uuid4

from chatkit.store import NotFoundError, Store, StoreItemType
from chatkit.types import (
    Attachment,
    FeedbackKind,
    Page,
    Thread,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
)
from pydantic import TypeAdapter
from sqlalchemy import (
    ColumnElement,
    and_,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..context import RequestContext
from ..db import autocommit_engine, prefixed, utcnow
from ..sqlite_writes import writing
from ..text_rules import storable, storable_json
from ..timestamps import sdk_time_to_utc
from . import stored_items
from .store_statements import ITEM_PREFIX, store_statements
from .tables import DELETING, PENDING, READY, AttachmentRow, FeedbackRow, ItemRow, ThreadRow

if TYPE_CHECKING:
    from ..attachments.blobs import BlobStorage

MAX_PAGE_SIZE = 100
T = TypeVar("T")

_ID_PREFIXES: dict[str, str] = {
    "thread": "thr",
    "message": "msg",
    "tool_call": "tc",
    "workflow": "wf",
    "task": "tsk",
    "attachment": "atc",
    "sdk_hidden_context": "shcx",
}

# The newest items of the thread being answered, as the server has just read them: the
# SDK's stream_agent_response reads the newest two again first thing, and this answers
# that read. Per task (a ContextVar), for one read.
_just_read: ContextVar[tuple[str, Page[ThreadItem]] | None] = ContextVar(
    "just_read_items", default=None
)


@contextlib.contextmanager
def answer_next_read_from(thread_id: str, page: Page[ThreadItem]) -> Iterator[None]:
    """Serve the next `load_thread_items(thread_id, None, n, "desc")` of this task from
    `page` (the thread's newest items, desc) when it holds the answer."""
    _just_read.set((thread_id, page))
    try:
        yield
    finally:
        # (Not a token reset: a generator may be closed from another task's context.)
        _just_read.set(None)


# The thread the request's checks just read (preflight.py), for the SDK's own read of
# it a moment later, once: (owner, thread). Per task, like `_just_read`.
_just_loaded_thread: ContextVar[tuple[str, ThreadMetadata] | None] = ContextVar(
    "just_loaded_thread", default=None
)


def answer_next_thread_read_from(thread: ThreadMetadata, owner_id: str) -> None:
    """Serve this task's next `load_thread` of `thread.id` by `owner_id` from `thread`."""
    _just_loaded_thread.set((owner_id, thread))


def _thread_just_loaded(thread_id: str, owner_id: str) -> ThreadMetadata | None:
    just_loaded = _just_loaded_thread.get()
    if just_loaded is None:
        return None
    _just_loaded_thread.set(None)  # once: later reads in the turn must see its changes
    owner, thread = just_loaded
    if owner != owner_id or thread.id != thread_id:
        return None
    # The SDK may change the copy it gets (a title); the checks have done with theirs.
    return thread.model_copy(deep=True)


def _from_just_read(thread_id: str, limit: int) -> Page[ThreadItem] | None:
    just_read = _just_read.get()
    if just_read is None or just_read[0] != thread_id:
        return None
    _just_read.set(None)  # one read only: the thread changes as the turn goes on
    page = just_read[1]
    if limit > len(page.data) and page.has_more:
        return None
    data = page.data[:limit]
    has_more = len(page.data) > limit or page.has_more
    return Page(data=data, has_more=has_more, after=data[-1].id if has_more and data else None)


_item_adapter = stored_items.item_adapter
_attachment_adapter: TypeAdapter[Attachment] = TypeAdapter(Attachment)


def _page(rows: Sequence[Row[str, str]], limit: int, parse: Callable[[str], T]) -> Page[T]:
    """A page of `limit` from `limit + 1` (id, data) rows, newest-first or oldest-first."""
    has_more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        data=[parse(row.data) for row in rows],
        has_more=has_more,
        after=rows[-1].id if has_more else None,
    )


def new_id(kind: str) -> str:
    """A full-entropy (128-bit) id keeping the SDK's prefix; the SDK default has 32 bits."""
    return f"{_ID_PREFIXES[kind]}_{uuid4().hex}"


def utc_naive(moment: datetime) -> datetime:
    """UTC without tzinfo, the one form stored. The SDK hands out naive *local* times."""
    return sdk_time_to_utc(moment).replace(tzinfo=None)


def clamp_limit(limit: int | None, default: int = 20) -> int:
    return max(1, min(limit or default, MAX_PAGE_SIZE))


def _after_cursor(
    time_col: Any, seq_col: Any, time: datetime, seq: int, order: str
) -> ColumnElement[bool]:
    """Rows past (time, seq) in a listing ordered by (time_col, seq_col) in `order`."""
    # The leading range term keeps the condition index-friendly on both databases.
    if order == "desc":
        return and_(time_col <= time, or_(time_col < time, seq_col < seq))
    return and_(time_col >= time, or_(time_col > time, seq_col > seq))


class SQLStore(Store[RequestContext]):
    """Threads, items, attachments and feedback in SQL tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._sql = store_statements(self._dialect)
        # Reads (SELECTs only) and one-statement writes: on PostgreSQL without BEGIN and
        # COMMIT or ROLLBACK (db.autocommit_engine).
        self._autocommit = autocommit_engine(engine)
        # Set when attachments are on (app.py): where their bytes go, so a deleted
        # thread takes its files along, and how an attachment is shown to its owner
        # (an image's preview URL is signed afresh on every read).
        self.blobs: BlobStorage | None = None
        self.present: Callable[[Attachment, RequestContext], Attachment] | None = None
        # A signed download URL for an attachment id (REST conversations and exports).
        self.attachment_link: Callable[[str, RequestContext], str] | None = None

    def _presented(self, item: T, context: RequestContext) -> T:
        if self.present is None or not isinstance(item, UserMessageItem) or not item.attachments:
            return item
        present = self.present
        shown = [present(a, context) for a in item.attachments]
        return item.model_copy(update={"attachments": shown})

    # ids -------------------------------------------------------------------

    def generate_thread_id(self, context: RequestContext) -> str:
        return context.new_thread_id or new_id("thread")

    def generate_item_id(
        self, item_type: StoreItemType, thread: ThreadMetadata, context: RequestContext
    ) -> str:
        return new_id(item_type)

    def generate_attachment_id(self, mime_type: str, context: RequestContext) -> str:
        return new_id("attachment")

    # plumbing --------------------------------------------------------------

    def _write(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return writing(self.engine)

    def _write_one(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """For a write of one statement: no transaction around it on PostgreSQL."""
        if self._dialect == "postgresql":
            return self._autocommit.connect()
        return self._write()

    def _insert(self, table: Any) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # threads ---------------------------------------------------------------

    async def load_thread(self, thread_id: str, context: RequestContext) -> ThreadMetadata:
        if (thread := _thread_just_loaded(thread_id, context.user_id)) is not None:
            return thread
        async with self._autocommit.connect() as conn:
            data = await conn.scalar(
                self._sql.load_thread, {"thread_id": thread_id, "owner_id": context.user_id}
            )
        if data is None:
            raise NotFoundError(f"Thread {thread_id} not found")
        return ThreadMetadata.model_validate_json(data)

    async def save_thread(self, thread: ThreadMetadata, context: RequestContext) -> None:
        if isinstance(thread, Thread):
            thread = ThreadMetadata.model_validate(thread.model_dump(exclude={"items"}))
        created = utc_naive(thread.created_at)
        # storable: a title the model wrote may hold what PostgreSQL cannot store.
        data = storable_json(thread.model_copy(update={"created_at": created.replace(tzinfo=UTC)}))
        row = {
            "id": thread.id,
            "user_id": context.user_id,
            "title": storable(thread.title),
            "created_at": created,
            "updated_at": utcnow(),
            "data": data,
        }
        # The first write of a new thread, before its first event: two round trips fewer.
        async with self._write_one() as conn:
            await conn.execute(self._sql.save_thread, row)

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: RequestContext
    ) -> Page[ThreadMetadata]:
        """The user's threads by last activity: "desc" most recent first, "asc" the reverse.

        Activity is a new or saved item, or a saved thread (a rename): `updated_at`, the
        order of REST /api/conversations. `after` is the last thread id of the previous
        page, and the page continues from where that thread is *now*. So no thread that
        did not move is skipped or repeated. A thread that got new activity between two
        pages moved to the recent end: desc pages below the cursor do not meet it again
        (the first page shows it), asc pages list it again at their end. If the `after`
        thread itself moved, the next page continues from its new place at the recent
        end: in desc the listing starts over below it (threads come again, none is
        missed); in asc nothing follows it (start over to see the rest).
        """
        limit = clamp_limit(limit)
        query = self._sql.threads_desc if order == "desc" else self._sql.threads_asc
        async with self._autocommit.connect() as conn:
            if after:
                cursor = (
                    await conn.execute(
                        select(ThreadRow.updated_at, ThreadRow.seq).where(
                            ThreadRow.id == after, ThreadRow.user_id == context.user_id
                        )
                    )
                ).first()
                if cursor is None:
                    raise NotFoundError(f"Thread {after} not found")
                query = query.where(
                    _after_cursor(ThreadRow.updated_at, ThreadRow.seq, *cursor, order)
                )
            params = {"user_id": context.user_id, "limit": limit + 1}
            rows = (await conn.execute(query, params)).all()
        return _page(rows, limit, ThreadMetadata.model_validate_json)

    async def delete_thread(self, thread_id: str, context: RequestContext) -> None:
        uid = context.user_id
        async with self._write() as conn:
            result = await conn.execute(
                delete(ThreadRow).where(ThreadRow.id == thread_id, ThreadRow.user_id == uid)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"Thread {thread_id} not found")
            files = list(
                await conn.scalars(
                    select(AttachmentRow.id).where(
                        AttachmentRow.thread_id == thread_id, AttachmentRow.user_id == uid
                    )
                )
            )
            # The SDK leaves attachments and feedback behind; a deleted thread leaves nothing.
            for table in (ItemRow, FeedbackRow):
                await conn.execute(
                    delete(table).where(table.thread_id == thread_id, table.user_id == uid)
                )
            # Attachments are marked, and their rows go only once their bytes have: a
            # storage that fails leaves them for purge to finish, never bytes unrecorded.
            await conn.execute(
                update(AttachmentRow)
                .where(AttachmentRow.thread_id == thread_id, AttachmentRow.user_id == uid)
                .values(state=DELETING)
            )
        if files:
            from ..attachments.records import remove_deleted

            await remove_deleted(self.engine, self.blobs, files)

    # items -----------------------------------------------------------------

    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: RequestContext,
    ) -> Page[ThreadItem]:
        limit = clamp_limit(limit)
        if after is None and order == "desc" and (page := _from_just_read(thread_id, limit)):
            return page
        scope = (ItemRow.thread_id == thread_id, ItemRow.user_id == context.user_id)
        query = self._sql.items_desc if order == "desc" else self._sql.items_asc
        async with self._autocommit.connect() as conn:
            if after:
                cursor = (
                    await conn.execute(
                        select(ItemRow.created_at, ItemRow.seq).where(ItemRow.id == after, *scope)
                    )
                ).first()
                if cursor is None:
                    raise NotFoundError(f"Item {after} not found")
                query = query.where(_after_cursor(ItemRow.created_at, ItemRow.seq, *cursor, order))
            params = {"thread_id": thread_id, "user_id": context.user_id, "limit": limit + 1}
            rows = (await conn.execute(query, params)).all()
        page = _page(rows, limit, _item_adapter.validate_json)
        if self.present is not None:
            page.data = [self._presented(item, context) for item in page.data]
        return page

    async def add_thread_item(
        self, thread_id: str, item: ThreadItem, context: RequestContext
    ) -> None:
        # An upsert: the SDK saves an open workflow at the end of one run and saves it
        # again, same id, when the next run closes it.
        await self._upsert_item(thread_id, item, context)

    async def save_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        await self._upsert_item(thread_id, item, context)

    async def _upsert_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        created = utc_naive(item.created_at)
        stored = item.model_copy(update={"created_at": created.replace(tzinfo=UTC)})
        row = {
            "id": item.id,
            "thread_id": thread_id,
            "user_id": context.user_id,
            "type": item.type,
            "created_at": created,
            # storable: replies and tool arguments the model wrote are stored as written
            # except for what PostgreSQL cannot store (text_rules.py).
            "data": storable_json(stored),
        }
        touch = {"thread_id": thread_id, "owner_id": context.user_id, "updated_at": utcnow()}
        if self._sql.touch_and_save_item is not None:
            async with self._write_one() as conn:
                found = await conn.scalar(
                    self._sql.touch_and_save_item, prefixed(row, ITEM_PREFIX) | touch
                )
            if not found:
                raise NotFoundError(f"Thread {thread_id} not found")
            return
        async with self._write() as conn:
            # Writing the thread first both checks ownership and takes SQLite's write
            # lock up front, so the transaction never has to upgrade a read lock.
            bumped = await conn.execute(self._sql.touch_thread, touch)
            if bumped.rowcount == 0:
                raise NotFoundError(f"Thread {thread_id} not found")
            await conn.execute(self._sql.save_item, row)

    async def load_item(self, thread_id: str, item_id: str, context: RequestContext) -> ThreadItem:
        async with self._autocommit.connect() as conn:
            data = await conn.scalar(
                select(ItemRow.data).where(
                    ItemRow.id == item_id,
                    ItemRow.thread_id == thread_id,
                    ItemRow.user_id == context.user_id,
                )
            )
        if data is None:
            raise NotFoundError(f"Item {item_id} not found")
        return self._presented(_item_adapter.validate_json(data), context)

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: RequestContext
    ) -> None:
        async with self._write() as conn:
            await conn.execute(
                delete(ItemRow).where(
                    ItemRow.id == item_id,
                    ItemRow.thread_id == thread_id,
                    ItemRow.user_id == context.user_id,
                )
            )
            await conn.execute(
                delete(FeedbackRow).where(
                    FeedbackRow.item_id == item_id, FeedbackRow.user_id == context.user_id
                )
            )

    # attachments -----------------------------------------------------------

    async def save_attachment(
        self, attachment: Attachment, context: RequestContext, *, state: str | None = None
    ) -> None:
        """A new attachment (`state` as given, else from its `uploaded` flag), or the SDK
        saving one with the thread it was sent in. The state of an existing row is only
        ever changed by the compare-and-set steps of attachments/records.py, and a row
        being deleted is left alone."""
        data = attachment.model_dump_json()
        uploaded = bool((attachment.metadata or {}).get("uploaded"))
        table = AttachmentRow.__table__
        stmt = self._insert(table).values(
            id=attachment.id,
            user_id=context.user_id,
            thread_id=attachment.thread_id,
            created_at=utcnow(),
            data=data,
            state=state or (READY if uploaded else PENDING),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={"data": data, "thread_id": attachment.thread_id},
            where=(table.c.user_id == context.user_id) & (table.c.state != DELETING),
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def load_attachment(self, attachment_id: str, context: RequestContext) -> Attachment:
        async with self._autocommit.connect() as conn:
            data = await conn.scalar(
                select(AttachmentRow.data).where(
                    AttachmentRow.id == attachment_id,
                    AttachmentRow.user_id == context.user_id,
                    AttachmentRow.state != DELETING,
                )
            )
        if data is None:
            raise NotFoundError(f"Attachment {attachment_id} not found")
        attachment = _attachment_adapter.validate_json(data)
        return self.present(attachment, context) if self.present else attachment

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        # The SDK calls this after the attachment store's delete, which removed the row
        # once the bytes were gone; a row left `deleting` (its bytes could not be deleted)
        # stays for purge to finish.
        async with self._write() as conn:
            await conn.execute(
                delete(AttachmentRow).where(
                    AttachmentRow.id == attachment_id,
                    AttachmentRow.user_id == context.user_id,
                    AttachmentRow.state != DELETING,
                )
            )

    # feedback --------------------------------------------------------------

    async def save_feedback(
        self,
        thread_id: str,
        item_ids: Sequence[str],
        kind: FeedbackKind,
        context: RequestContext,
    ) -> int:
        """Record `kind` for those of `item_ids` that are in the user's thread; count them."""
        uid = context.user_id
        now = utcnow()
        async with self._write() as conn:
            found = (
                await conn.scalars(
                    select(ItemRow.id).where(
                        ItemRow.id.in_(list(item_ids)),
                        ItemRow.thread_id == thread_id,
                        ItemRow.user_id == uid,
                    )
                )
            ).all()
            for item_id in found:
                stmt = self._insert(FeedbackRow.__table__).values(
                    user_id=uid,
                    item_id=item_id,
                    thread_id=thread_id,
                    kind=kind,
                    created_at=now,
                )
                stmt = stmt.on_conflict_do_update(
                    index_elements=["user_id", "item_id"],
                    set_={"kind": kind, "created_at": now},
                )
                await conn.execute(stmt)
        return len(found)

    # conversations (REST) ---------------------------------------------------
    # Read-only queries behind REST /api/conversations (chat/conversations.py).

    MESSAGE_TYPES = ("user_message", "assistant_message")

    @staticmethod
    def _like_pattern(text: str) -> str:
        """A LIKE pattern (escape character `\\`) matching `text` anywhere, literally."""
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"%{escaped}%"

    async def search_threads(
        self, context: RequestContext, *, limit: int, offset: int, text: str | None = None
    ) -> list[tuple[ThreadMetadata, datetime]]:
        """The user's threads, newest activity first, each with its last-activity time.

        `text` keeps the threads whose title or user/assistant message text contains
        it (case-insensitive: full Unicode on PostgreSQL, ASCII only on SQLite).
        """
        query = select(ThreadRow.data, ThreadRow.updated_at).where(
            ThreadRow.user_id == context.user_id
        )
        if text:
            pattern = self._like_pattern(text)
            query = query.where(
                or_(
                    ThreadRow.title.ilike(pattern, escape="\\"),
                    self._message_text_matches(pattern, context),
                )
            )
        query = (
            query.order_by(ThreadRow.updated_at.desc(), ThreadRow.seq.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            (ThreadMetadata.model_validate_json(row.data), row.updated_at.replace(tzinfo=UTC))
            for row in rows
        ]

    def _message_text_matches(self, pattern: str, context: RequestContext) -> ColumnElement[bool]:
        # Matches the extracted `content[*].text` strings, never the raw JSON, so a
        # search cannot hit keys, ids, types or escape sequences by accident.
        texts: Any
        castable: ColumnElement[bool] = true()
        if self._dialect == "postgresql":
            # JSON holding a NUL escape cannot be cast to JSONB: one such row would fail
            # every search of its user. None is stored any more (text_rules.py); rows
            # stored before are left out of the match rather than breaking it.
            castable = func.strpos(ItemRow.data, "\\u0000") == 0
            # jsonpath's lax mode yields nothing, instead of failing, where the shape differs.
            texts = func.jsonb_array_elements_text(
                func.jsonb_path_query_array(
                    cast(ItemRow.data, postgresql.JSONB),
                    cast(literal("$.content[*].text"), postgresql.JSONPATH),
                )
            ).table_valued("value")
            text_col = texts.c.value
        else:
            texts = func.json_each(ItemRow.data, "$.content").table_valued("value")
            text_col = func.json_extract(texts.c.value, "$.text")
        return exists(
            select(literal(1))
            .select_from(ItemRow)
            .join(texts, true())
            .where(
                ItemRow.thread_id == ThreadRow.id,
                ItemRow.user_id == context.user_id,
                ItemRow.type.in_(self.MESSAGE_TYPES),
                castable,
                text_col.ilike(pattern, escape="\\"),
            )
        )

    async def count_threads(self, context: RequestContext) -> int:
        """How many threads the user has."""
        query = select(func.count()).select_from(ThreadRow)
        async with self._autocommit.connect() as conn:
            count = await conn.scalar(query.where(ThreadRow.user_id == context.user_id))
        return int(count or 0)

    async def load_thread_activity(
        self, thread_id: str, context: RequestContext
    ) -> tuple[ThreadMetadata, datetime]:
        """The thread and its last-activity time; NotFoundError if the user has no such thread."""
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(
                    select(ThreadRow.data, ThreadRow.updated_at).where(
                        ThreadRow.id == thread_id, ThreadRow.user_id == context.user_id
                    )
                )
            ).first()
        if row is None:
            raise NotFoundError(f"Thread {thread_id} not found")
        return ThreadMetadata.model_validate_json(row.data), row.updated_at.replace(tzinfo=UTC)

    async def message_stats(
        self, thread_ids: Sequence[str], context: RequestContext
    ) -> dict[str, tuple[int, ThreadItem]]:
        """For each of the threads with messages: how many, and the newest, in one query."""
        if not thread_ids:
            return {}
        newest_first = (ItemRow.created_at.desc(), ItemRow.seq.desc())
        ranked = (
            select(
                ItemRow.thread_id,
                ItemRow.data,
                func.count().over(partition_by=ItemRow.thread_id).label("n"),
                func.row_number()
                .over(partition_by=ItemRow.thread_id, order_by=newest_first)
                .label("rank"),
            )
            .where(
                ItemRow.thread_id.in_(list(thread_ids)),
                ItemRow.user_id == context.user_id,
                ItemRow.type.in_(self.MESSAGE_TYPES),
            )
            .subquery()
        )
        query = select(ranked.c.thread_id, ranked.c.n, ranked.c.data).where(ranked.c.rank == 1)
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row.thread_id: (row.n, _item_adapter.validate_json(row.data)) for row in rows}

    async def load_all_thread_items(
        self, thread_id: str, context: RequestContext
    ) -> list[ThreadItem]:
        """Every item of the thread, oldest first (for a full view or export)."""
        query = (
            select(ItemRow.data)
            .where(ItemRow.thread_id == thread_id, ItemRow.user_id == context.user_id)
            .order_by(ItemRow.created_at, ItemRow.seq)
        )
        async with self._autocommit.connect() as conn:
            rows = (await conn.scalars(query)).all()
        return [_item_adapter.validate_json(data) for data in rows]
