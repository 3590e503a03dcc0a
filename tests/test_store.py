"""SQLStore against real SQLite and PostgreSQL databases: scoping, paging, upserts, ids."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from chatkit.store import NotFoundError
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    CustomSummary,
    CustomTask,
    FileAttachment,
    InferenceOptions,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
    Workflow,
    WorkflowItem,
)
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.chat.store import SQLStore, answer_next_thread_read_from, new_id
from chatkit_backend.chat.tables import AttachmentRow, FeedbackRow, ItemRow, ThreadRow
from chatkit_backend.context import RequestContext

# Every other module that declares tables, so that Base.metadata holds them all.
from chatkit_backend.runs import tables as _run_tables  # noqa: F401
from chatkit_backend.tasks import models as _task_models  # noqa: F401

ALICE = RequestContext(user_id="alice")
BOB = RequestContext(user_id="bob")


@pytest.fixture
def store(engine: AsyncEngine) -> SQLStore:
    return SQLStore(engine)


def user_message(thread_id: str, item_id: str, text: str, created_at: datetime) -> UserMessageItem:
    return UserMessageItem(
        id=item_id,
        thread_id=thread_id,
        created_at=created_at,
        content=[UserMessageTextContent(text=text)],
        inference_options=InferenceOptions(),
    )


def assistant_message(thread_id: str, item_id: str, text: str) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=item_id,
        thread_id=thread_id,
        created_at=datetime.now(),
        content=[AssistantMessageContent(text=text)],
    )


async def new_thread(
    store: SQLStore, ctx: RequestContext, created_at: datetime | None = None, title: str = "t"
) -> ThreadMetadata:
    thread = ThreadMetadata(
        id=store.generate_thread_id(ctx), created_at=created_at or datetime.now(), title=title
    )
    await store.save_thread(thread, ctx)
    return thread


async def count(engine: AsyncEngine, table: type, *where: object) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(table).where(*where))


async def all_pages(store: SQLStore, thread_id: str, order: str, limit: int) -> list[str]:
    """Walk every page, checking the `after`/`has_more` contract on each."""
    ids: list[str] = []
    after = None
    for _ in range(100):
        page = await store.load_thread_items(thread_id, after, limit, order, ALICE)
        ids += [item.id for item in page.data]
        if not page.has_more:
            assert page.after is None
            return ids
        assert len(page.data) == limit
        assert page.after == page.data[-1].id
        after = page.after
    raise AssertionError("paging never ended")


# threads --------------------------------------------------------------------


async def test_save_and_load_thread(store: SQLStore) -> None:
    thread = await new_thread(store, ALICE, title="Groceries")
    loaded = await store.load_thread(thread.id, ALICE)
    assert loaded.id == thread.id
    assert loaded.title == "Groceries"

    thread.title = "Renamed"
    await store.save_thread(thread, ALICE)
    assert (await store.load_thread(thread.id, ALICE)).title == "Renamed"


async def test_the_thread_the_checks_just_read_answers_the_next_read_once(
    store: SQLStore, engine: AsyncEngine
) -> None:
    """preflight.py reads the thread, then the SDK reads it again first thing."""
    thread = await new_thread(store, ALICE, title="kept")
    checked = await store.load_thread(thread.id, ALICE)
    answer_next_thread_read_from(checked, ALICE.user_id)
    async with engine.begin() as conn:  # proof that the next read does not query
        await conn.execute(delete(ThreadRow).where(ThreadRow.id == thread.id))
    again = await store.load_thread(thread.id, ALICE)
    assert again.title == "kept"
    again.title = "changed by the SDK"
    assert checked.title == "kept"  # a copy
    with pytest.raises(NotFoundError):  # once only: later reads see the table
        await store.load_thread(thread.id, ALICE)
    # Never for another user, nor for another thread.
    mine = await new_thread(store, ALICE, title="mine")
    answer_next_thread_read_from(await store.load_thread(mine.id, ALICE), ALICE.user_id)
    with pytest.raises(NotFoundError):
        await store.load_thread(mine.id, BOB)
    other = await new_thread(store, ALICE, title="other")
    answer_next_thread_read_from(mine, ALICE.user_id)
    assert (await store.load_thread(other.id, ALICE)).title == "other"


async def test_load_thread_of_another_user_is_not_found(store: SQLStore) -> None:
    thread = await new_thread(store, ALICE)
    with pytest.raises(NotFoundError):
        await store.load_thread(thread.id, BOB)


async def test_save_thread_cannot_overwrite_another_users_thread(store: SQLStore) -> None:
    thread = await new_thread(store, ALICE, title="mine")
    await store.save_thread(thread.model_copy(update={"title": "stolen"}), BOB)
    assert (await store.load_thread(thread.id, ALICE)).title == "mine"
    with pytest.raises(NotFoundError):
        await store.load_thread(thread.id, BOB)


async def test_load_threads_pages_in_both_orders(store: SQLStore) -> None:
    base = datetime.now()
    ids = [(await new_thread(store, ALICE, base + timedelta(seconds=i))).id for i in range(5)]
    await new_thread(store, BOB, base)

    for order, expected in (("asc", ids), ("desc", ids[::-1])):
        seen: list[str] = []
        after = None
        pages = []
        while True:
            page = await store.load_threads(2, after, order, ALICE)
            seen += [t.id for t in page.data]
            pages.append(len(page.data))
            if not page.has_more:
                assert page.after is None
                break
            assert page.after == page.data[-1].id
            after = page.after
        assert seen == expected
        assert pages == [2, 2, 1]


async def test_load_threads_limit_is_capped_at_100(store: SQLStore) -> None:
    base = datetime.now()
    for i in range(105):
        await new_thread(store, ALICE, base + timedelta(milliseconds=i))
    page = await store.load_threads(1000, None, "asc", ALICE)
    assert len(page.data) == 100
    assert page.has_more
    assert page.after == page.data[-1].id


async def touch(store: SQLStore, thread_id: str) -> None:
    """New activity in the thread: an item written, as a turn does."""
    await store.add_thread_item(
        thread_id, assistant_message(thread_id, new_id("message"), "x"), ALICE
    )


async def set_activity(engine: AsyncEngine, times: dict[str, datetime]) -> None:
    async with engine.begin() as conn:
        for thread_id, moment in times.items():
            await conn.execute(
                update(ThreadRow).where(ThreadRow.id == thread_id).values(updated_at=moment)
            )


async def walk_threads(
    store: SQLStore, order: str, limit: int, between_pages: Callable[[list[str]], Awaitable[None]]
) -> list[str]:
    """Every page of ALICE's threads in `order`, calling `between_pages(listed so far)`."""
    listed: list[str] = []
    after = None
    for _ in range(100):
        page = await store.load_threads(limit, after, order, ALICE)
        listed += [t.id for t in page.data]
        if not page.has_more:
            assert page.after is None
            return listed
        assert page.after == page.data[-1].id
        after = page.after
        await between_pages(listed)
    raise AssertionError("paging never ended")


async def test_threads_are_listed_by_last_activity_like_the_rest_api(store: SQLStore) -> None:
    """An old thread written in moves to the top of the history (desc), as in REST."""
    a, b, c, d, e = [(await new_thread(store, ALICE)).id for _ in range(5)]
    await new_thread(store, BOB)
    await touch(store, b)
    await touch(store, a)

    newest_first = [a, b, e, d, c]
    desc = await store.load_threads(10, None, "desc", ALICE)
    assert [t.id for t in desc.data] == newest_first
    asc = await store.load_threads(10, None, "asc", ALICE)
    assert [t.id for t in asc.data] == newest_first[::-1]
    rest = await store.search_threads(ALICE, limit=10, offset=0)
    assert [thread.id for thread, _ in rest] == newest_first

    # A rename is activity too (it saves the thread), in both listings alike.
    renamed = await store.load_thread(d, ALICE)
    await store.save_thread(renamed.model_copy(update={"title": "renamed"}), ALICE)
    assert [t.id for t in (await store.load_threads(1, None, "desc", ALICE)).data] == [d]
    assert [t.id for t, _ in await store.search_threads(ALICE, limit=1, offset=0)] == [d]


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_thread_pages_skip_and_repeat_no_unmoved_thread_while_others_move(
    store: SQLStore, engine: AsyncEngine, order: str
) -> None:
    """60 threads, six to a tick of updated_at (so seq decides), paged 7 at a time while
    two threads get new activity between every two pages: one already listed, one not."""
    ids = [(await new_thread(store, ALICE)).id for _ in range(60)]
    await new_thread(store, BOB)
    base = datetime(2020, 1, 1)  # long before the activity of this test
    # Ties in every tick, and seq order unlike time order.
    tick = {thread_id: (i * 7) % 10 for i, thread_id in enumerate(ids)}
    await set_activity(engine, {t: base + timedelta(seconds=tick[t]) for t in ids})
    by_activity = sorted(ids, key=lambda t: (tick[t], ids.index(t)))
    expected = by_activity[::-1] if order == "desc" else by_activity

    moved: list[str] = []

    async def move_two(listed: list[str]) -> None:
        after = listed[-1]
        seen = [t for t in listed if t not in moved and t != after]
        unseen = [t for t in expected if t not in listed and t not in moved]
        for thread_id in seen[:1] + unseen[len(unseen) // 2 :][:1]:
            await touch(store, thread_id)
            moved.append(thread_id)

    listed = await walk_threads(store, order, 7, move_two)

    assert len(moved) > 10
    unmoved = [t for t in expected if t not in moved]
    assert [t for t in listed if t not in moved] == unmoved  # each exactly once, in order
    if order == "desc":
        # Moved threads went above the cursor: never met again, nor late, by later pages.
        assert len(listed) == len(set(listed))
        first = await store.load_threads(len(moved), None, "desc", ALICE)
        assert {t.id for t in first.data} == set(moved)  # a reload shows them on top
    else:
        # Moved threads went to the end: listed there once each (again, if seen before).
        tail = listed[len(listed) - len(moved) :]
        assert sorted(tail) == sorted(moved)


async def test_thread_page_after_a_thread_that_moved_continues_from_its_new_place(
    store: SQLStore,
) -> None:
    """The cursor is where the `after` thread is now: desc starts over below it (nothing
    skipped, earlier threads again), asc finds nothing after it (start over)."""
    ids = [(await new_thread(store, ALICE)).id for _ in range(10)]

    first = await store.load_threads(3, None, "desc", ALICE)
    assert [t.id for t in first.data] == ids[:-4:-1]
    await touch(store, ids[7])  # the `after` thread of that page
    second = await store.load_threads(3, first.after, "desc", ALICE)
    assert [t.id for t in second.data] == [ids[9], ids[8], ids[6]]
    assert second.has_more

    first = await store.load_threads(3, None, "asc", ALICE)
    assert [t.id for t in first.data] == ids[:3]
    await touch(store, ids[2])
    second = await store.load_threads(3, first.after, "asc", ALICE)
    assert second.data == [] and not second.has_more


async def test_thread_page_after_an_unknown_or_foreign_thread_is_not_found(
    store: SQLStore,
) -> None:
    bobs = await new_thread(store, BOB)
    for after in (bobs.id, "thr_missing"):
        with pytest.raises(NotFoundError):
            await store.load_threads(10, after, "desc", ALICE)


async def test_thread_updated_at_is_bumped_by_add_thread_item(
    store: SQLStore, engine: AsyncEngine
) -> None:
    thread = await new_thread(store, ALICE)
    old = datetime(2000, 1, 1)
    async with engine.begin() as conn:
        await conn.execute(
            update(ThreadRow).where(ThreadRow.id == thread.id).values(updated_at=old)
        )
    await store.add_thread_item(
        thread.id, user_message(thread.id, "msg_1", "hi", datetime.now()), ALICE
    )
    async with engine.connect() as conn:
        updated = await conn.scalar(select(ThreadRow.updated_at).where(ThreadRow.id == thread.id))
    now_utc = datetime.now(UTC).replace(tzinfo=None)
    assert updated > old
    assert abs(updated - now_utc) < timedelta(minutes=1)


# items ----------------------------------------------------------------------


async def test_items_with_identical_timestamps_page_completely(store: SQLStore) -> None:
    """50 items, most sharing one naive `created_at` tick: no gaps, no repeats, stable order."""
    thread = await new_thread(store, ALICE)
    tick = datetime.now().replace(microsecond=0)
    # Ties in large groups, and one group inserted out of timestamp order.
    offsets = [1] * 20 + [0] * 5 + [1] * 10 + [2] * 15
    for i, offset in enumerate(offsets):
        item = user_message(thread.id, f"msg_{i:02d}", f"m{i}", tick + timedelta(seconds=offset))
        await store.add_thread_item(thread.id, item, ALICE)
    expected = [f"msg_{i:02d}" for i in sorted(range(50), key=lambda i: (offsets[i], i))]

    asc = await all_pages(store, thread.id, "asc", 7)
    desc = await all_pages(store, thread.id, "desc", 7)

    assert asc == expected
    assert desc == expected[::-1]
    assert len(set(asc)) == len(set(desc)) == 50


async def test_items_of_another_users_thread_are_empty(store: SQLStore) -> None:
    thread = await new_thread(store, ALICE)
    await store.add_thread_item(
        thread.id, user_message(thread.id, "msg_a", "secret", datetime.now()), ALICE
    )
    page = await store.load_thread_items(thread.id, None, 20, "asc", BOB)
    assert page.data == []
    assert not page.has_more
    assert len((await store.load_thread_items(thread.id, None, 20, "asc", ALICE)).data) == 1


async def test_add_thread_item_to_another_users_thread_is_rejected(
    store: SQLStore, engine: AsyncEngine
) -> None:
    thread = await new_thread(store, ALICE)
    with pytest.raises(NotFoundError):
        await store.add_thread_item(
            thread.id, user_message(thread.id, "msg_b", "intrusion", datetime.now()), BOB
        )
    assert await count(engine, ItemRow, ItemRow.thread_id == thread.id) == 0


async def test_add_thread_item_is_an_upsert(store: SQLStore, engine: AsyncEngine) -> None:
    thread = await new_thread(store, ALICE)
    created = datetime.now()
    open_wf = WorkflowItem(
        id="wf_1",
        thread_id=thread.id,
        created_at=created,
        workflow=Workflow(
            type="custom", tasks=[CustomTask(title="step 1", status_indicator="loading")]
        ),
    )
    closed_wf = WorkflowItem(
        id="wf_1",
        thread_id=thread.id,
        created_at=created,
        workflow=Workflow(
            type="custom",
            tasks=[
                CustomTask(title="step 1", status_indicator="complete"),
                CustomTask(title="step 2", status_indicator="complete"),
            ],
            summary=CustomSummary(title="Done"),
        ),
    )
    await store.add_thread_item(thread.id, open_wf, ALICE)
    await store.add_thread_item(thread.id, closed_wf, ALICE)

    assert await count(engine, ItemRow, ItemRow.id == "wf_1") == 1
    loaded = await store.load_item(thread.id, "wf_1", ALICE)
    assert isinstance(loaded, WorkflowItem)
    assert [t.title for t in loaded.workflow.tasks] == ["step 1", "step 2"]
    assert loaded.workflow.summary == CustomSummary(title="Done")
    page = await store.load_thread_items(thread.id, None, 20, "asc", ALICE)
    assert [i.id for i in page.data] == ["wf_1"]


async def test_save_item_is_an_upsert(store: SQLStore, engine: AsyncEngine) -> None:
    thread = await new_thread(store, ALICE)
    await store.add_thread_item(thread.id, assistant_message(thread.id, "msg_x", "draft"), ALICE)
    await store.save_item(thread.id, assistant_message(thread.id, "msg_x", "final"), ALICE)
    await store.save_item(thread.id, assistant_message(thread.id, "msg_y", "new"), ALICE)

    assert await count(engine, ItemRow, ItemRow.id == "msg_x") == 1
    loaded = await store.load_item(thread.id, "msg_x", ALICE)
    assert isinstance(loaded, AssistantMessageItem)
    assert loaded.content[0].text == "final"
    assert (await store.load_item(thread.id, "msg_y", ALICE)).id == "msg_y"


async def test_load_item_and_delete_thread_item_are_scoped(store: SQLStore) -> None:
    thread = await new_thread(store, ALICE)
    bobs = await new_thread(store, BOB)
    await store.add_thread_item(thread.id, assistant_message(thread.id, "msg_1", "x"), ALICE)

    with pytest.raises(NotFoundError):
        await store.load_item(thread.id, "msg_1", BOB)
    with pytest.raises(NotFoundError):
        await store.load_item(bobs.id, "msg_1", BOB)

    await store.delete_thread_item(thread.id, "msg_1", BOB)
    await store.delete_thread_item(bobs.id, "msg_1", BOB)
    assert (await store.load_item(thread.id, "msg_1", ALICE)).id == "msg_1"

    await store.delete_thread_item(thread.id, "msg_1", ALICE)
    with pytest.raises(NotFoundError):
        await store.load_item(thread.id, "msg_1", ALICE)


async def test_save_item_cannot_overwrite_another_users_item(store: SQLStore) -> None:
    thread = await new_thread(store, ALICE)
    bobs = await new_thread(store, BOB)
    await store.add_thread_item(thread.id, assistant_message(thread.id, "msg_1", "mine"), ALICE)
    with contextlib.suppress(NotFoundError):
        await store.save_item(bobs.id, assistant_message(bobs.id, "msg_1", "stolen"), BOB)
    loaded = await store.load_item(thread.id, "msg_1", ALICE)
    assert isinstance(loaded, AssistantMessageItem)
    assert loaded.content[0].text == "mine"


# delete_thread --------------------------------------------------------------


async def test_delete_thread_removes_items_attachments_and_feedback(
    store: SQLStore, engine: AsyncEngine
) -> None:
    thread = await new_thread(store, ALICE)
    await store.add_thread_item(thread.id, assistant_message(thread.id, "msg_1", "a"), ALICE)
    attachment = FileAttachment(
        id=store.generate_attachment_id("text/plain", ALICE),
        name="notes.txt",
        mime_type="text/plain",
        thread_id=thread.id,
    )
    await store.save_attachment(attachment, ALICE)
    assert await store.save_feedback(thread.id, ["msg_1"], "positive", ALICE) == 1

    tables = (
        (ThreadRow, ThreadRow.id == thread.id),
        (ItemRow, ItemRow.thread_id == thread.id),
        (AttachmentRow, AttachmentRow.thread_id == thread.id),
        (FeedbackRow, FeedbackRow.thread_id == thread.id),
    )

    with pytest.raises(NotFoundError):
        await store.delete_thread(thread.id, BOB)
    for table, where in tables:
        assert await count(engine, table, where) == 1, table.__tablename__

    await store.delete_thread(thread.id, ALICE)
    for table, where in tables:
        assert await count(engine, table, where) == 0, table.__tablename__
    with pytest.raises(NotFoundError):
        await store.load_thread(thread.id, ALICE)
    with pytest.raises(NotFoundError):
        await store.load_attachment(attachment.id, ALICE)


async def test_attachments_are_scoped_and_upserted(store: SQLStore) -> None:
    attachment = FileAttachment(id="atc_1", name="a.txt", mime_type="text/plain")
    await store.save_attachment(attachment, ALICE)
    await store.save_attachment(attachment.model_copy(update={"name": "b.txt"}), ALICE)
    assert (await store.load_attachment("atc_1", ALICE)).name == "b.txt"
    with pytest.raises(NotFoundError):
        await store.load_attachment("atc_1", BOB)
    await store.delete_attachment("atc_1", BOB)
    assert (await store.load_attachment("atc_1", ALICE)).name == "b.txt"
    await store.delete_attachment("atc_1", ALICE)
    with pytest.raises(NotFoundError):
        await store.load_attachment("atc_1", ALICE)


# ids ------------------------------------------------------------------------


async def test_generated_ids_keep_prefixes_and_carry_128_bits(store: SQLStore) -> None:
    thread = ThreadMetadata(id="thr_x", created_at=datetime.now())
    generated = {
        "thr": store.generate_thread_id(ALICE),
        "atc": store.generate_attachment_id("image/png", ALICE),
    }
    for kind, prefix in [
        ("message", "msg"),
        ("tool_call", "tc"),
        ("workflow", "wf"),
        ("task", "tsk"),
        ("attachment", "atc"),
        ("sdk_hidden_context", "shcx"),
    ]:
        generated[prefix] = store.generate_item_id(kind, thread, ALICE)
    for prefix, value in generated.items():
        assert re.fullmatch(rf"{prefix}_[0-9a-f]{{32,}}", value), value

    draws = {store.generate_item_id("message", thread, ALICE) for _ in range(10_000)}
    assert len(draws) == 10_000
    threads = {store.generate_thread_id(ALICE) for _ in range(10_000)}
    assert len(threads) == 10_000


# timestamps -----------------------------------------------------------------


@pytest.fixture
def new_york_time() -> Iterator[None]:
    """Run with a non-UTC local zone, so naive local and UTC times differ."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.usefixtures("new_york_time")
async def test_naive_local_timestamps_are_stored_as_utc(
    store: SQLStore, engine: AsyncEngine
) -> None:
    local = datetime(2026, 1, 15, 9, 30, 0, 123456)  # naive, as the SDK makes them
    expected = local.astimezone(UTC).replace(tzinfo=None)
    assert expected != local  # the zone really is not UTC

    thread = await new_thread(store, ALICE, created_at=local)
    await store.add_thread_item(thread.id, user_message(thread.id, "msg_1", "hi", local), ALICE)

    async with engine.connect() as conn:
        thread_created = await conn.scalar(
            select(ThreadRow.created_at).where(ThreadRow.id == thread.id)
        )
        item_created = await conn.scalar(select(ItemRow.created_at).where(ItemRow.id == "msg_1"))
    assert thread_created == expected
    assert item_created == expected

    loaded = await store.load_item(thread.id, "msg_1", ALICE)
    assert loaded.created_at.astimezone(UTC) == local.astimezone(UTC)


# feedback -------------------------------------------------------------------


async def test_save_feedback_records_only_own_items_and_upserts_kind(
    store: SQLStore, engine: AsyncEngine
) -> None:
    thread = await new_thread(store, ALICE)
    other = await new_thread(store, ALICE)
    bobs = await new_thread(store, BOB)
    await store.add_thread_item(thread.id, assistant_message(thread.id, "msg_a1", "1"), ALICE)
    await store.add_thread_item(thread.id, assistant_message(thread.id, "msg_a2", "2"), ALICE)
    await store.add_thread_item(other.id, assistant_message(other.id, "msg_o1", "3"), ALICE)
    await store.add_thread_item(bobs.id, assistant_message(bobs.id, "msg_b1", "4"), BOB)

    recorded = await store.save_feedback(
        thread.id, ["msg_a1", "msg_o1", "msg_b1", "msg_missing"], "positive", ALICE
    )
    assert recorded == 1

    async def feedback() -> list[tuple[str, str, str]]:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(FeedbackRow.user_id, FeedbackRow.item_id, FeedbackRow.kind).order_by(
                    FeedbackRow.user_id, FeedbackRow.item_id
                )
            )
            return [tuple(row) for row in rows]

    assert await feedback() == [("alice", "msg_a1", "positive")]

    assert await store.save_feedback(thread.id, ["msg_a1"], "negative", ALICE) == 1
    assert await feedback() == [("alice", "msg_a1", "negative")]

    # Bob can neither rate Alice's items nor reach them through his own thread.
    assert await store.save_feedback(thread.id, ["msg_a1", "msg_a2"], "positive", BOB) == 0
    assert await store.save_feedback(bobs.id, ["msg_a2"], "positive", BOB) == 0
    assert await feedback() == [("alice", "msg_a1", "negative")]


# schema ---------------------------------------------------------------------
