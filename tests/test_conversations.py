"""REST /api/conversations on SQLite and PostgreSQL: listing, search, detail, rename, delete,
export, and that one user never sees or touches another's conversations."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    CustomTask,
    EndOfTurnItem,
    HiddenContextItem,
    InferenceOptions,
    SDKHiddenContextItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
    WidgetItem,
    Workflow,
    WorkflowItem,
)
from chatkit.widgets import DynamicWidgetRoot
from fastapi import FastAPI, Request
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend import errors
from chatkit_backend.auth import current_context
from chatkit_backend.chat.conversations import attachment, router
from chatkit_backend.chat.store import SQLStore, new_id
from chatkit_backend.chat.tables import ThreadRow
from chatkit_backend.config import load_settings
from chatkit_backend.context import RequestContext

ALICE = RequestContext(user_id="alice")
BOB = RequestContext(user_id="bob")
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def store(engine: AsyncEngine) -> SQLStore:
    return SQLStore(engine)


@pytest.fixture
def app(store: SQLStore) -> FastAPI:
    app = FastAPI()
    app.state.store = store
    app.state.settings = load_settings()
    errors.install_error_handlers(app)
    app.include_router(router)

    async def user_from_header(request: Request) -> RequestContext:
        return RequestContext(user_id=request.headers["x-test-user"])

    app.dependency_overrides[current_context] = user_from_header
    return app


async def _client(app: FastAPI, ctx: RequestContext) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        headers={"x-test-user": ctx.user_id},
    )


@pytest.fixture
async def alice(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(app, ALICE) as http:
        yield http


@pytest.fixture
async def bob(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(app, BOB) as http:
        yield http


# seeding through the store, with real SDK items ------------------------------------


async def new_thread(
    store: SQLStore, title: str | None = "Untitled", ctx: RequestContext = ALICE, seconds: int = 0
) -> str:
    thread_id = store.generate_thread_id(ctx)
    await store.save_thread(ThreadMetadata(id=thread_id, title=title, created_at=at(seconds)), ctx)
    return thread_id


async def add(store: SQLStore, item: Any, ctx: RequestContext = ALICE) -> Any:
    await store.add_thread_item(item.thread_id, item, ctx)
    return item


def user_message(thread_id: str, text: str, seconds: int, *tags: str) -> UserMessageItem:
    return UserMessageItem(
        id=new_id("message"),
        thread_id=thread_id,
        created_at=at(seconds),
        content=[
            UserMessageTextContent(text=text),
            *(
                UserMessageTagContent(id=f"tag-{t}", text=t, data={"text": "tag data"})
                for t in tags
            ),
        ],
        inference_options=InferenceOptions(),
    )


def assistant_message(thread_id: str, text: str, seconds: int) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=new_id("message"),
        thread_id=thread_id,
        created_at=at(seconds),
        content=[AssistantMessageContent(text=text)],
    )


def tool_record(
    thread_id: str, call_id: str, name: str, arguments: dict[str, Any], output: Any, seconds: int
) -> HiddenContextItem:
    return HiddenContextItem(
        id=new_id("tool_call"),
        thread_id=thread_id,
        created_at=at(seconds),
        content={
            "kind": "tool_call",
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
            "output": output,
        },
    )


def workflow(thread_id: str, title: str, seconds: int) -> WorkflowItem:
    return WorkflowItem(
        id=new_id("workflow"),
        thread_id=thread_id,
        created_at=at(seconds),
        workflow=Workflow(type="custom", tasks=[CustomTask(title=title)]),
    )


def widget(thread_id: str, copy_text: str, seconds: int) -> WidgetItem:
    return WidgetItem(
        id=new_id("message"),
        thread_id=thread_id,
        created_at=at(seconds),
        # Built from plain data: chatkit deprecates its named widget classes (Card, Text).
        widget=DynamicWidgetRoot(type="Card", children=[{"type": "Text", "value": copy_text}]),
        copy_text=copy_text,
    )


def hidden_note(thread_id: str, text: str, seconds: int) -> HiddenContextItem:
    return HiddenContextItem(
        id=new_id("message"), thread_id=thread_id, created_at=at(seconds), content=text
    )


def sdk_hidden(thread_id: str, text: str, seconds: int) -> SDKHiddenContextItem:
    return SDKHiddenContextItem(
        id=new_id("sdk_hidden_context"), thread_id=thread_id, created_at=at(seconds), content=text
    )


def end_of_turn(thread_id: str, seconds: int) -> EndOfTurnItem:
    return EndOfTurnItem(id=new_id("message"), thread_id=thread_id, created_at=at(seconds))


async def a_full_turn(store: SQLStore, ctx: RequestContext = ALICE) -> dict[str, Any]:
    """Two turns: tool calls then a reply with a widget, then a tagged question and answer."""
    tid = await new_thread(store, "Plants", ctx)
    items = {
        "ask": user_message(tid, "Remind me to water the plants", 1),
        "workflow": workflow(tid, "Added task 'Water the plants'", 2),
        "call1": tool_record(tid, "call_1", "add_task", {"title": "Water"}, {"ok": True}, 3),
        "call2": tool_record(tid, "call_2", "list_tasks", {}, {"tasks": []}, 4),
        "sdk": sdk_hidden(tid, "SECRET-SDK-NOTE", 5),
        "reply": assistant_message(tid, "Added **Water the plants**.", 6),
        "widget": widget(tid, "WIDGET-COPY-TEXT", 7),
        "note": hidden_note(tid, "SECRET-HIDDEN-NOTE", 8),
        "end": end_of_turn(tid, 9),
        "ask2": user_message(tid, "What about ", 10, "Garden"),
        "reply2": assistant_message(tid, "Nothing else.", 11),
    }
    for item in items.values():
        await add(store, item, ctx)
    return {"id": tid, **items}


async def set_activity(engine: AsyncEngine, thread_id: str, seconds: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(ThreadRow)
            .where(ThreadRow.id == thread_id)
            .values(updated_at=at(seconds).replace(tzinfo=None))
        )


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()]


# list -------------------------------------------------------------------------------


async def test_list_is_newest_activity_first_and_pages(
    store: SQLStore, alice: httpx.AsyncClient
) -> None:
    first = await new_thread(store, "first")
    second = await new_thread(store, "second")
    third = await new_thread(store, "third")
    # A new message is activity: the oldest thread moves to the top.
    await add(store, user_message(first, "hello again", 1))
    assert ids(await alice.get("/api/conversations")) == [first, third, second]

    assert ids(await alice.get("/api/conversations", params={"limit": 2})) == [first, third]
    page = await alice.get("/api/conversations", params={"limit": 2, "offset": 2})
    assert ids(page) == [second]
    assert ids(await alice.get("/api/conversations", params={"offset": 3})) == []


async def test_equal_activity_times_keep_a_stable_order(
    engine: AsyncEngine, store: SQLStore, alice: httpx.AsyncClient
) -> None:
    made = [await new_thread(store, f"t{n}") for n in range(4)]
    for thread_id in made:
        await set_activity(engine, thread_id, 100)
    # Same updated_at: the later-created thread first, every time, so pages never overlap.
    expected = list(reversed(made))
    assert ids(await alice.get("/api/conversations")) == expected
    pages = [
        ids(await alice.get("/api/conversations", params={"limit": 1, "offset": n}))
        for n in range(4)
    ]
    assert [p[0] for p in pages] == expected


@pytest.mark.parametrize(
    "params", [{"limit": 101}, {"limit": 0}, {"offset": -1}, {"limit": "many"}]
)
async def test_list_rejects_out_of_range_paging(
    alice: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await alice.get("/api/conversations", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == errors.PROBLEM_JSON


async def test_list_counts_messages_and_previews_the_newest(
    store: SQLStore, alice: httpx.AsyncClient
) -> None:
    turn = await a_full_turn(store)
    long_tid = await new_thread(store, "Long")
    long_text = "Line one\n\n  " + "word " * 60
    await add(store, user_message(long_tid, "short question", 1))
    await add(store, assistant_message(long_tid, long_text, 2))
    await add(store, widget(long_tid, "not a message", 3))
    asked_tid = await new_thread(store, "Asked")
    await add(store, user_message(asked_tid, "Only a question?", 1))
    empty_tid = await new_thread(store, None)

    listed = {c["id"]: c for c in (await alice.get("/api/conversations")).json()}
    full = listed[turn["id"]]
    assert full["message_count"] == 4
    assert full["preview"] == "Nothing else."
    assert full["title"] == "Plants"
    assert set(full) == {"id", "title", "created_at", "updated_at", "message_count", "preview"}
    assert datetime.fromisoformat(full["created_at"]) == T0

    preview = listed[long_tid]["preview"]
    assert listed[long_tid]["message_count"] == 2
    assert preview == " ".join(long_text.split())[:120]
    assert len(preview) == 120 and "\n" not in preview

    assert listed[asked_tid]["preview"] == "Only a question?"
    assert listed[empty_tid] == listed[empty_tid] | {
        "title": None,
        "message_count": 0,
        "preview": None,
    }


# search -----------------------------------------------------------------------------


async def test_search_finds_titles_and_message_text_ignoring_case(
    store: SQLStore, alice: httpx.AsyncClient
) -> None:
    groceries = await new_thread(store, "Grocery Plans")
    report = await new_thread(store, "Work")
    await add(store, user_message(report, "Remind me about the QUARTERLY report", 1))
    answer = await new_thread(store, "Other")
    await add(store, assistant_message(answer, "Your dentist is on Friday.", 1))
    tagged = await new_thread(store, "Tags")
    await add(store, user_message(tagged, "see ", 1, "Holiday"))

    async def search(q: str) -> list[str]:
        return ids(await alice.get("/api/conversations", params={"q": q}))

    assert await search("grocery") == [groceries]
    assert await search("quarterly REPORT") == [report]
    assert await search("DENTIST") == [answer]
    assert await search("holiday") == [tagged]
    assert set(await search("")) == {groceries, report, answer, tagged}
    assert await search("nothing like this") == []


async def test_search_never_matches_json_keys_ids_or_hidden_items(
    store: SQLStore, alice: httpx.AsyncClient
) -> None:
    turn = await a_full_turn(store)
    reply_id = turn["reply"].id

    async def search(q: str) -> list[str]:
        return ids(await alice.get("/api/conversations", params={"q": q}))

    for q in (
        "assistant_message",  # an item type
        "user_message",
        "input_text",  # a content part type
        "output_text",
        "annotations",  # a key of every assistant content part
        "inference_options",
        '"text"',  # a key, quoted as in the JSON
        "text",
        reply_id,  # an item id
        turn["id"],  # the thread id
        "tag-Garden",  # a tag's id
        "tag data",  # a tag's data
        "SECRET-HIDDEN-NOTE",  # hidden items are never searched
        "SECRET-SDK-NOTE",
        "list_tasks",  # tool records
        "WIDGET-COPY-TEXT",  # widgets are not messages
        "Added task",  # neither are workflows
    ):
        assert await search(q) == [], q
    # While the words of the very same items are found.
    assert await search("**water the") == [turn["id"]]
    assert await search("garden") == [turn["id"]]


async def test_search_treats_wildcards_literally(store: SQLStore, alice: httpx.AsyncClient) -> None:
    percent = await new_thread(store, "Done 100% of it")
    digits = await new_thread(store, "Done 1000 of it")
    underscore = await new_thread(store, "a_b")
    letters = await new_thread(store, "axb")
    slash = await new_thread(store, r"C:\temp")
    await new_thread(store, "C:temp")
    quoted = await new_thread(store, "plain")
    await add(store, user_message(quoted, 'He said "hi" to me', 1))

    async def search(q: str) -> list[str]:
        return ids(await alice.get("/api/conversations", params={"q": q}))

    assert await search("100%") == [percent]
    assert digits not in await search("0%")
    assert await search("a_b") == [underscore]
    assert letters not in await search("_")
    assert await search("\\") == [slash]
    # Matched against the text, not its JSON escaping (\"hi\").
    assert await search('"hi"') == [quoted]
    assert await search('\\"hi') == []


# detail -----------------------------------------------------------------------------


async def test_detail_has_messages_in_order_with_their_tool_calls(
    store: SQLStore, alice: httpx.AsyncClient
) -> None:
    turn = await a_full_turn(store)
    response = await alice.get(f"/api/conversations/{turn['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == turn["id"] and body["title"] == "Plants"
    assert body["message_count"] == 4 and body["preview"] == "Nothing else."
    messages = body["messages"]
    assert [(m["id"], m["role"], m["content"]) for m in messages] == [
        (turn["ask"].id, "user", "Remind me to water the plants"),
        (turn["reply"].id, "assistant", "Added **Water the plants**."),
        (turn["ask2"].id, "user", "What about @Garden"),
        (turn["reply2"].id, "assistant", "Nothing else."),
    ]
    assert [datetime.fromisoformat(m["created_at"]) for m in messages] == [
        at(1),
        at(6),
        at(10),
        at(11),
    ]
    assert messages[1]["tool_calls"] == [
        {
            "id": "call_1",
            "name": "add_task",
            "arguments": {"title": "Water"},
            "result": {"ok": True},
        },
        {"id": "call_2", "name": "list_tasks", "arguments": {}, "result": {"tasks": []}},
    ]
    assert all("tool_calls" not in m for m in (messages[0], messages[2], messages[3]))


async def test_detail_never_shows_hidden_items_widgets_or_workflows(
    store: SQLStore, alice: httpx.AsyncClient
) -> None:
    turn = await a_full_turn(store)
    text = (await alice.get(f"/api/conversations/{turn['id']}")).text
    for secret in ("SECRET-HIDDEN-NOTE", "SECRET-SDK-NOTE", "WIDGET-COPY-TEXT", "Added task"):
        assert secret not in text
    for item in ("sdk", "note", "widget", "workflow", "end", "call1", "call2"):
        assert turn[item].id not in text


async def test_tool_calls_of_a_stopped_turn_do_not_land_on_the_next_reply(
    store: SQLStore, alice: httpx.AsyncClient
) -> None:
    tid = await new_thread(store, "Stopped")
    await add(store, user_message(tid, "add it", 1))
    await add(store, tool_record(tid, "call_x", "add_task", {"title": "x"}, {"ok": True}, 2))
    await add(store, user_message(tid, "never mind", 3))
    await add(store, assistant_message(tid, "OK.", 4))
    messages = (await alice.get(f"/api/conversations/{tid}")).json()["messages"]
    assert [m["content"] for m in messages] == ["add it", "never mind", "OK."]
    assert all("tool_calls" not in m for m in messages)


async def test_missing_conversation_is_404_problem(alice: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/api/conversations/thr_nope"),
        ("PATCH", "/api/conversations/thr_nope"),
        ("DELETE", "/api/conversations/thr_nope"),
        ("GET", "/api/conversations/thr_nope/export"),
    ):
        body = {"title": "x"} if method == "PATCH" else None
        response = await alice.request(method, path, json=body)
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == errors.PROBLEM_JSON
        assert response.json()["title"] == "Not Found"


# rename and delete ----------------------------------------------------------------


async def test_rename_changes_the_title_chatkit_reads(
    store: SQLStore, alice: httpx.AsyncClient
) -> None:
    tid = await new_thread(store, "Old")
    await add(store, user_message(tid, "hi", 1))
    response = await alice.patch(f"/api/conversations/{tid}", json={"title": "  New name  "})
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "New name"
    assert body["message_count"] == 1 and body["preview"] == "hi"
    assert (await store.load_thread(tid, ALICE)).title == "New name"
    page = await store.load_threads(10, None, "desc", ALICE)
    assert [t.title for t in page.data] == ["New name"]
    assert (await alice.get("/api/conversations", params={"q": "new NAME"})).json()[0]["id"] == tid

    longest = "x" * 200
    response = await alice.patch(f"/api/conversations/{tid}", json={"title": longest})
    assert response.status_code == 200 and response.json()["title"] == longest


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {},
        {"title": 5},
        {"title": "a", "x": 1},
    ],
)
async def test_rename_rejects_bad_titles(
    store: SQLStore, alice: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    tid = await new_thread(store, "Kept")
    response = await alice.patch(f"/api/conversations/{tid}", json=body)
    assert response.status_code == 422
    assert (await store.load_thread(tid, ALICE)).title == "Kept"


async def test_delete_removes_the_conversation(store: SQLStore, alice: httpx.AsyncClient) -> None:
    turn = await a_full_turn(store)
    kept = await new_thread(store, "Kept")
    response = await alice.delete(f"/api/conversations/{turn['id']}")
    assert response.status_code == 200
    assert response.json() == {"status": "deleted", "id": turn["id"]}
    assert (await alice.get(f"/api/conversations/{turn['id']}")).status_code == 404
    assert (await alice.delete(f"/api/conversations/{turn['id']}")).status_code == 404
    assert ids(await alice.get("/api/conversations")) == [kept]
    assert ids(await alice.get("/api/conversations", params={"q": "plants"})) == []


# recent/first ------------------------------------------------------------------------


async def test_recent_first_is_null_then_the_latest(
    engine: AsyncEngine, store: SQLStore, alice: httpx.AsyncClient
) -> None:
    response = await alice.get("/api/conversations/recent/first")
    assert response.status_code == 200 and response.json() is None

    older = await new_thread(store, "Older")
    await add(store, user_message(older, "first words", 1))
    newer = await new_thread(store, "Newer")
    await set_activity(engine, older, 200)
    await set_activity(engine, newer, 100)
    recent = (await alice.get("/api/conversations/recent/first")).json()
    listed = (await alice.get("/api/conversations")).json()
    assert recent == listed[0]
    assert recent["id"] == older and recent["preview"] == "first words"
    assert datetime.fromisoformat(recent["updated_at"]) == at(200)


# export ---------------------------------------------------------------------------------


async def test_export_json_is_the_detail_as_a_download(
    store: SQLStore, alice: httpx.AsyncClient
) -> None:
    turn = await a_full_turn(store)
    detail = (await alice.get(f"/api/conversations/{turn['id']}")).json()
    for params in ({}, {"format": "json"}):
        response = await alice.get(f"/api/conversations/{turn['id']}/export", params=params)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["content-disposition"] == (
            f'attachment; filename="conversation-{turn["id"]}.json"'
        )
        assert json.loads(response.content) == detail


async def test_export_markdown_reads_as_a_transcript(
    store: SQLStore, alice: httpx.AsyncClient
) -> None:
    turn = await a_full_turn(store)
    response = await alice.get(
        f"/api/conversations/{turn['id']}/export", params={"format": "markdown"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="conversation-{turn["id"]}.md"'
    )
    assert response.text == (
        "# Plants\n"
        "\n"
        "**User** · 2025-03-01 09:00:01 UTC\n"
        "\n"
        "Remind me to water the plants\n"
        "\n"
        "**Assistant** · 2025-03-01 09:00:06 UTC\n"
        "\n"
        "Tool calls:\n"
        '- `add_task` `{"title": "Water"}` → `{"ok": true}`\n'
        '- `list_tasks` `{}` → `{"tasks": []}`\n'
        "\n"
        "Added **Water the plants**.\n"
        "\n"
        "**User** · 2025-03-01 09:00:10 UTC\n"
        "\n"
        "What about @Garden\n"
        "\n"
        "**Assistant** · 2025-03-01 09:00:11 UTC\n"
        "\n"
        "Nothing else.\n"
    )
    for secret in ("SECRET-HIDDEN-NOTE", "SECRET-SDK-NOTE", "WIDGET-COPY-TEXT"):
        assert secret not in response.text


def test_export_filename_keeps_only_safe_characters() -> None:
    # Ids come from new_id, but the header must not depend on that.
    header = attachment('thr_1"; x\r\nSet-Cookie: a/../b', "md")["Content-Disposition"]
    assert header == 'attachment; filename="conversation-thr_1___x__Set-Cookie__a____b.md"'


async def test_export_rejects_other_formats(store: SQLStore, alice: httpx.AsyncClient) -> None:
    tid = await new_thread(store, "x")
    response = await alice.get(f"/api/conversations/{tid}/export", params={"format": "xml"})
    assert response.status_code == 422


# users ------------------------------------------------------------------------------------


async def test_another_users_conversation_is_exactly_a_missing_one(
    store: SQLStore, alice: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    turn = await a_full_turn(store, ALICE)
    tid = turn["id"]
    routes = [
        ("GET", "/api/conversations/{}", None),
        ("GET", "/api/conversations/{}/export", None),
        ("GET", "/api/conversations/{}/export?format=markdown", None),
        ("PATCH", "/api/conversations/{}", {"title": "Taken over"}),
        ("DELETE", "/api/conversations/{}", None),
    ]
    for method, path, body in routes:
        theirs = await bob.request(method, path.format(tid), json=body)
        missing = await bob.request(method, path.format("thr_missing"), json=body)
        assert theirs.status_code == missing.status_code == 404, (method, path)
        assert theirs.json() == missing.json()
        assert theirs.headers["content-type"] == missing.headers["content-type"]

    # Nothing of Alice's was changed, and Bob sees none of it anywhere.
    assert (await store.load_thread(tid, ALICE)).title == "Plants"
    assert (await alice.get(f"/api/conversations/{tid}")).status_code == 200
    assert (await bob.get("/api/conversations")).json() == []
    for q in ("plants", "water", "Nothing else"):
        assert (await bob.get("/api/conversations", params={"q": q})).json() == []
    assert (await bob.get("/api/conversations/recent/first")).json() is None

    # Bob's own conversations are his alone, and the stats never mix users.
    mine = await new_thread(store, "Bob's plants", BOB)
    await add(store, user_message(mine, "water my plants too", 1), BOB)
    listed = (await bob.get("/api/conversations", params={"q": "plants"})).json()
    assert [(c["id"], c["message_count"]) for c in listed] == [(mine, 1)]
    assert ids(await alice.get("/api/conversations")) == [tid]
    assert (await bob.get("/api/conversations/recent/first")).json()["id"] == mine
