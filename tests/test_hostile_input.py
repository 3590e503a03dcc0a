"""Hostile input, on SQLite and PostgreSQL over real HTTP: deep JSON, integers past SQL's
range, characters a database cannot store, oversized message parts, failing tools, bad
headers and titles. Every one gets a clear problem+json status, never a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest
from chatkit.types import InferenceOptions, ThreadMetadata, UserMessageItem, UserMessageTextContent
from sqlalchemy import insert, text

from chatkit_backend.agent.todo_tools import UNAVAILABLE, _tool_error
from chatkit_backend.chat.store import SQLStore, new_id
from chatkit_backend.chat.tables import ItemRow
from chatkit_backend.config import load_settings
from chatkit_backend.context import RequestContext
from chatkit_backend.db import MAX_SQL_INT, create_engine
from chatkit_backend.logs import ContextIds
from chatkit_backend.tasks.schemas import TaskQuery
from chatkit_backend.tasks.service import TaskService
from chatkit_backend.text_rules import free_text_problem, name_problem, storable_json

from .conftest import is_title_request, scripted_settings
from .live import ChatKitClient, live_server, parse_sse, user_input
from .scripted_provider import Call, ScriptedProvider, Text, ToolCalls

LOCAL = RequestContext(user_id="local")  # the user of a server without auth
SECRET = "hostile-input-secret-0123456789-abcdefghijklmnop"


@pytest.fixture
def title() -> str:
    """The title the scripted model writes for new threads (parametrize to change it)."""
    return "Scripted title"


@pytest.fixture
def provider(title: str) -> Iterator[ScriptedProvider]:
    with ScriptedProvider() as scripted:
        scripted.route(is_title_request, Text(title))
        yield scripted


@pytest.fixture
async def store(database_url: str, server_url: str) -> AsyncIterator[SQLStore]:
    """A second way into the server's database, to plant rows and read what was stored."""
    engine = create_engine(load_settings(database_url=database_url).async_database_url)
    try:
        yield SQLStore(engine)
    finally:
        await engine.dispose()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


def chat_requests(provider: ScriptedProvider) -> list[dict[str, Any]]:
    return [r for r in provider.requests if not is_title_request(r)]


def tool_outputs(provider: ScriptedProvider) -> list[dict[str, Any]]:
    """Every tool result the model was sent, in order (the last request holds them all)."""
    messages = chat_requests(provider)[-1]["messages"]
    return [json.loads(m["content"]) for m in messages if m["role"] == "tool"]


def create(content: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "threads.create",
        "params": {
            "input": {"content": content, "attachments": [], "inference_options": {}, **extra}
        },
    }


def deep(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


# 1. deeply nested JSON --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/chatkit", "/api/chat/stream"])
async def test_deeply_nested_json_is_400_and_the_connection_stays_usable(
    client: ChatKitClient, path: str
) -> None:
    bodies = [
        deep(100_000),
        '{"message": ' + deep(1_000) + "}",
        '{"message": "hi", "thread_id": ' + deep(5_000) + "}",
        '{"anything": ' + deep(2_000) + "}",
    ]
    for body in bodies:
        response = await client.http.post(
            path, content=body, headers={"content-type": "application/json"}
        )
        assert problem(response, 400)["code"] == "invalid_request"
        assert "nested" in response.json()["detail"] or "JSON" in response.json()["detail"]
    # The same client (and keep-alive connection) goes on working.
    listed = await client.call("threads.list")
    assert listed["data"] == []


async def test_deeply_nested_json_on_rest_bodies_is_400(client: ChatKitClient) -> None:
    for method, path in [
        ("PATCH", "/api/conversations/thr_x"),
        ("POST", "/api/tasks"),
        ("PATCH", "/api/tasks/1"),
    ]:
        response = await client.http.request(
            method,
            path,
            content='{"title": ' + deep(50_000) + "}",
            headers={"content-type": "application/json"},
        )
        problem(response, 400)


# 2. integers past SQL's range --------------------------------------------------------


async def test_integer_parameters_past_sql_range_are_422_and_the_largest_works(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    too_big, largest = MAX_SQL_INT + 1, MAX_SQL_INT
    for path in [
        f"/api/conversations?offset={too_big}",
        f"/api/conversations?limit={too_big}",
        "/api/conversations?offset=-1",
        f"/api/tasks?offset={too_big}",
        f"/api/tasks?limit={too_big}",
        f"/api/usage?days={too_big}",
        "/api/usage?days=0",
    ]:
        body = problem(await client.http.get(path), 422)
        assert body["code"] == "validation_error"
    for path in [f"/api/conversations?offset={largest}", f"/api/tasks?offset={largest}"]:
        response = await client.http.get(path)
        assert response.status_code == 200, (path, response.text)
    # A task id SQL cannot hold cannot exist: 404, as for any other missing task.
    for task_id in (too_big, -too_big, 10**30):
        problem(await client.http.get(f"/api/tasks/{task_id}"), 404)
        problem(await client.http.post(f"/api/tasks/{task_id}/complete"), 404)
    # ChatKit page sizes are clamped, whatever their size.
    provider.enqueue(Text("hi"))
    thread_id, _ = await client.create_thread("hello")
    assert len((await client.call("threads.list", limit=10**30))["data"]) == 1
    assert len((await client.call("items.list", thread_id=thread_id, limit=-(10**30)))["data"])


# 3. characters the databases cannot store -----------------------------------------


async def test_nul_and_control_characters_in_chatkit_ids_and_titles_are_400(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("hi"))
    thread_id, _ = await client.create_thread("hello")
    bad = ["thr_\x00", "thr_\x1b[2J", "thr_a\nb", "thr_\x7fx", "thr_\x85x"]
    for value in bad:
        for body in [
            {"type": "threads.get_by_id", "params": {"thread_id": value}},
            {"type": "threads.delete", "params": {"thread_id": value}},
            {"type": "threads.list", "params": {"after": value}},
            {"type": "items.list", "params": {"thread_id": thread_id, "after": value}},
            {
                "type": "items.feedback",
                "params": {"thread_id": thread_id, "item_ids": [value], "kind": "positive"},
            },
            {
                "type": "threads.retry_after_item",
                "params": {"thread_id": thread_id, "item_id": value},
            },
            {
                "type": "threads.add_user_message",
                "params": {"thread_id": value, "input": user_input("hi")},
            },
            {"type": "threads.update", "params": {"thread_id": thread_id, "title": value}},
            create([{"type": "input_tag", "id": value, "text": "t", "data": {}}]),
        ]:
            response = await client.post(body)
            assert problem(response, 400)["code"] in {"invalid_text", "invalid_title"}, body
    # The simple format is checked the same way.
    for path in ("/chatkit", "/api/chat/stream"):
        response = await client.http.post(path, json={"message": "hi", "thread_id": "thr_\x00"})
        assert problem(response, 400)["code"] == "invalid_text"
    thread = await client.call("threads.get_by_id", thread_id=thread_id)
    assert thread["title"] == "Scripted title"


async def test_nul_in_any_text_of_a_message_is_400_and_nothing_is_stored(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    bodies = [
        create([{"type": "input_text", "text": "buy\x00bread"}]),
        create([{"type": "input_text", "text": "hi"}], quoted_text="quote\x00"),
        create([{"type": "input_tag", "id": "t1", "text": "ta\x00g", "data": {}}]),
        create([{"type": "input_tag", "id": "t1", "text": "tag", "data": {"k": "v\x00"}}]),
        create([{"type": "input_tag", "id": "t1", "text": "tag", "data": {"k\x00": 1}}]),
        {
            "type": "threads.create",
            "params": {"input": user_input("hi")},
            "metadata": {"x": "\x00"},
        },
    ]
    for body in bodies:
        detail = problem(await client.post(body), 400)["detail"]
        assert "NUL" in detail, detail
    for path in ("/chatkit", "/api/chat/stream"):
        response = await client.http.post(path, json={"message": "buy\x00bread"})
        assert "NUL" in problem(response, 400)["detail"]
    assert (await client.call("threads.list"))["data"] == []
    assert chat_requests(provider) == []


async def test_free_text_keeps_tabs_newlines_and_other_control_characters(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("ok"))
    message = "col1\tcol2\r\nline two \x1b[1mbold\x1b[0m"
    thread_id, _ = await client.create_thread(message)
    items = await client.items(thread_id)
    assert items[0]["content"][0]["text"] == message
    created = await client.http.post(
        "/api/tasks", json={"title": "Tabs", "description": "a\tb\nc\x1b"}
    )
    assert created.status_code == 201 and created.json()["description"] == "a\tb\nc\x1b"


async def test_nul_in_rest_names_ids_and_free_text_is_422(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("hi"))
    thread_id, _ = await client.create_thread("hello")
    http = client.http
    conversation = f"/api/conversations/{thread_id}"
    requests = [
        http.get("/api/conversations", params={"q": "hel\x00lo"}),
        http.get("/api/conversations", params={"q": "a\nb"}),
        http.get("/api/conversations/thr_%00"),
        http.get("/api/conversations/thr_%00/export"),
        http.delete("/api/conversations/thr_%1B"),
        http.post("/api/conversations/thr_%00/stop"),
        http.patch(conversation, json={"title": "new\x00title"}),
        http.patch(conversation, json={"title": "new\ntitle"}),
        http.post("/api/tasks", json={"title": "a\x00b"}),
        http.post("/api/tasks", json={"title": "a\tb"}),
        http.post("/api/tasks", json={"title": "ok", "description": "x\x00y"}),
        http.post("/api/tasks", json={"title": "ok", "tags": ["t\x00"]}),
        http.get("/api/tasks", params={"search": "a\x00"}),
        http.get("/api/tasks", params={"tag": "a\x00"}),
    ]
    for request in requests:
        response = await request
        assert problem(response, 422)["code"] == "validation_error", response.request.url
    task = (await http.post("/api/tasks", json={"title": "Kept"})).json()
    for change in ({"title": "x\x00"}, {"description": "x\x00"}, {"tags": ["\x00"]}):
        problem(await http.patch(f"/api/tasks/{task['id']}", json=change), 422)
    # JSON's \ud800 escape decodes to a lone surrogate, which neither database can encode.
    surrogate = b'{"title": "bad \\ud800 title"}'
    for method, path in [("POST", "/api/tasks"), ("PATCH", conversation)]:
        response = await http.request(
            method, path, content=surrogate, headers={"content-type": "application/json"}
        )
        problem(response, 422)
    assert (await http.get(f"/api/tasks/{task['id']}")).json()["title"] == "Kept"
    assert (await http.get(conversation)).json()["title"] == "Scripted title"


@pytest.mark.parametrize("title", ["Bad\x00title\x1b"])
async def test_model_text_is_stored_without_nul_and_search_still_works(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("hello\x00world"))
    thread_id, events = await client.create_thread("greet me")
    assert not any(e["type"] == "error" for e in events)
    items = await client.items(thread_id)
    assert items[-1]["content"][0]["text"] == "helloworld"
    thread = await client.call("threads.get_by_id", thread_id=thread_id)
    assert thread["title"] == "Badtitle"
    found = await client.http.get("/api/conversations", params={"q": "hellowor"})
    assert [c["id"] for c in found.json()] == [thread_id]


async def test_a_nul_stored_before_does_not_break_search(
    client: ChatKitClient, provider: ScriptedProvider, store: SQLStore
) -> None:
    provider.enqueue(Text("bread is on the list"))
    searchable, _ = await client.create_thread("add bread")
    # A message saved with a NUL by an earlier version, written as it would have been.
    legacy = ThreadMetadata(id=new_id("thread"), created_at=datetime.now(), title="Old thread")
    await store.save_thread(legacy, LOCAL)
    item = UserMessageItem(
        id=new_id("message"),
        thread_id=legacy.id,
        created_at=datetime.now(),
        content=[UserMessageTextContent(text="old bread\x00crumbs")],
        inference_options=InferenceOptions(),
    )
    async with store.engine.begin() as conn:
        await conn.execute(
            insert(ItemRow).values(
                id=item.id,
                thread_id=legacy.id,
                user_id=LOCAL.user_id,
                type=item.type,
                created_at=datetime.now(),
                data=item.model_dump_json(),
            )
        )
    response = await client.http.get("/api/conversations", params={"q": "bread"})
    assert response.status_code == 200, response.text
    assert searchable in [c["id"] for c in response.json()]
    old = await client.http.get("/api/conversations", params={"q": "old thread"})
    assert [c["id"] for c in old.json()] == [legacy.id]


async def test_a_token_sub_with_control_characters_is_401(
    database_url: str, provider: ScriptedProvider
) -> None:
    settings = scripted_settings(
        database_url, provider, better_auth_secret=SECRET, auth_secret=None, auth_jwks_url=None
    )

    def token(sub: str) -> str:
        claims = {"sub": sub, "exp": int(datetime.now().timestamp()) + 300}
        return jwt.encode(claims, SECRET, algorithm="HS256")

    with live_server(settings) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            for sub in ("ali\x00ce", "alice\nadmin", "bob\x1b[31m", "\x85x"):
                headers = {"authorization": f"Bearer {token(sub)}"}
                for request in (
                    http.get("/api/tasks", headers=headers),
                    http.post("/chatkit", json={"message": "hi"}, headers=headers),
                ):
                    body = problem(await request, 401)
                    assert body["code"] == "invalid_token"
                    assert "'sub' claim contains" in body["detail"]
            good = {"authorization": f"Bearer {token('alice')}"}
            assert (await http.get("/api/tasks", headers=good)).status_code == 200


async def test_tool_arguments_with_nul_come_back_to_the_model_as_invalid(
    client: ChatKitClient, provider: ScriptedProvider, database_url: str
) -> None:
    provider.enqueue(
        ToolCalls([("add_task", {"title": "buy\x00bread"})]),
        ToolCalls([("add_task", {"title": "ok", "description": "x\x00", "tags": ["a"]})]),
        ToolCalls([("add_task", {"title": "ok", "tags": ["t\x00"]})]),
        ToolCalls([("list_tasks", {"search": "\x00"})]),
        Text("could not"),
    )
    thread_id, events = await client.create_thread("add it")
    assert not any(e["type"] == "error" for e in events)
    outputs = tool_outputs(provider)
    assert [(o["ok"], o["error"]) for o in outputs] == [(False, "invalid")] * 4
    assert all("NUL" in o["message"] for o in outputs)
    engine = create_engine(load_settings(database_url=database_url).async_database_url)
    try:
        page = await TaskService(engine).list(LOCAL, TaskQuery())
    finally:
        await engine.dispose()
    assert page.total == 0
    # What the thread recorded of those calls is stored and readable.
    items = await client.items(thread_id)
    assert items[-1]["content"][0]["text"] == "could not"


# 4. the message limit counts every part the model reads ------------------------------


async def test_the_message_limit_counts_tags_their_data_and_quoted_text(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    big = "x" * 4001
    bodies = [
        create(
            [
                {"type": "input_text", "text": "hi"},
                {"type": "input_tag", "id": "t", "text": big, "data": {}},
            ]
        ),
        create([{"type": "input_text", "text": "hi"}], quoted_text="q" * 500_000),
        create(
            [
                {"type": "input_text", "text": "hi"},
                {"type": "input_tag", "id": "t", "text": "tag", "data": {"blob": big}},
            ]
        ),
        create([{"type": "input_text", "text": "a" * 2000}], quoted_text="b" * 2001),
    ]
    for body in bodies:
        assert problem(await client.post(body), 400)["code"] == "message_too_long"
    assert chat_requests(provider) == []
    # A tag alone is a message: the model reads it as "@name".
    provider.enqueue(Text("noted"))
    response = await client.post(
        create([{"type": "input_tag", "id": "t", "text": "Groceries", "data": {}}])
    )
    assert response.status_code == 200, response.text
    assert chat_requests(provider)[-1]["messages"][-1]["content"] == "@Groceries"


# 5. a failing tool shows no internals -----------------------------------------------


@contextmanager
def captured_records() -> Iterator[list[logging.LogRecord]]:
    """Every log record of the process while the block runs, with the request's ids
    (attached after start-up: the app replaces the root handlers when it is created)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            records.append(record)

    handler = Collect(level=logging.DEBUG)
    handler.addFilter(ContextIds())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)


INTERNALS = ("sqlalchemy", "asyncpg", "sqlite", "INSERT", "no such table", "does not exist")


async def test_a_tool_whose_database_call_fails_tells_the_model_and_user_nothing_internal(
    client: ChatKitClient, provider: ScriptedProvider, store: SQLStore
) -> None:
    # The tasks table disappears under the running server: every task query fails.
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE tasks"))
    provider.enqueue(
        ToolCalls([Call("add_task", {"title": "Water the plants"}, call_id="call_w")]),
        Text("Sorry, that did not work."),
    )
    with captured_records() as records:
        response = await client.http.post(
            "/chatkit",
            json={"type": "threads.create", "params": {"input": user_input("water plants")}},
            headers={"x-request-id": "hostile-tool-1"},
        )
    assert response.status_code == 200
    events = parse_sse(response.text)
    assert not any(e["type"] == "error" for e in events)
    [output] = tool_outputs(provider)
    assert output == {"ok": False, "error": "unavailable", "message": UNAVAILABLE}
    seen_by_model = json.dumps(chat_requests(provider))
    for secret in INTERNALS:
        assert secret not in response.text, secret
        assert secret not in seen_by_model, secret
    thread_id = events[0]["thread"]["id"]
    stored = json.dumps(await client.items(thread_id))
    assert not any(secret in stored for secret in INTERNALS)
    # The detail is in the log, with the id of the request that ran the tool.
    failures = [r for r in records if r.getMessage() == "tool add_task failed"]
    assert failures, [r.getMessage() for r in records]
    assert getattr(failures[0], "request_id", None) == "hostile-tool-1"
    assert "tasks" in (failures[0].exc_text or "")


def test_an_unexpected_tool_error_is_logged_not_shown() -> None:
    error = RuntimeError("(sqlalchemy.exc.OperationalError) SELECT * FROM tasks")
    with captured_records() as records:
        shown = json.loads(_tool_error(None, error))  # type: ignore[arg-type]
    assert shown == {"ok": False, "error": "unavailable", "message": UNAVAILABLE}
    assert any(r.exc_info and r.exc_info[1] is error for r in records)


# 6. Idempotency-Key and thread titles ---------------------------------------------


async def test_a_bad_idempotency_key_is_400_and_admits_nothing(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    body = {"type": "threads.create", "params": {"input": user_input("hello")}}
    # (The HTTP parser itself refuses C0 controls and DEL in headers; latin-1's C1 range
    # passes it and decodes to control characters.)
    for key in (b"k" * 256, b"key\x85", b"\x9bkey"):
        response = await client.http.post("/chatkit", json=body, headers={"idempotency-key": key})
        detail = problem(response, 400)
        assert detail["code"] == "invalid_idempotency_key"
        assert "Idempotency-Key" in detail["detail"]
    assert (await client.call("threads.list"))["data"] == []
    provider.enqueue(Text("hi"))
    ok = await client.http.post("/chatkit", json=body, headers={"idempotency-key": "k" * 255})
    assert ok.status_code == 200


async def test_thread_titles_follow_one_rule_on_chatkit_and_rest(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("hi"))
    thread_id, _ = await client.create_thread("hello")
    for title in ("", "   ", "x" * 201, "x" * 100_000, "tab\there", "bell\x07"):
        chatkit = await client.post(
            {"type": "threads.update", "params": {"thread_id": thread_id, "title": title}}
        )
        assert problem(chatkit, 400)["code"] == "invalid_title", title
        rest = await client.http.patch(f"/api/conversations/{thread_id}", json={"title": title})
        problem(rest, 422)
    updated = await client.call("threads.update", thread_id=thread_id, title="  Trimmed  ")
    assert updated["title"] == "Trimmed"
    longest = "y" * 200
    await client.call("threads.update", thread_id=thread_id, title=longest)
    summary = (await client.http.get(f"/api/conversations/{thread_id}")).json()
    assert summary["title"] == longest


# 20. what a valid body looks like -----------------------------------------------------


async def test_a_body_without_a_type_says_what_a_valid_one_looks_like(
    client: ChatKitClient,
) -> None:
    for body in ({}, [], "text", {"params": {}}):
        detail = problem(await client.post(json.dumps(body).encode()), 400)
        assert detail["code"] == "invalid_request"
        assert "threads.create" in detail["detail"] and '"message"' in detail["detail"]
        assert "discriminator" not in detail["detail"]
    unknown = problem(await client.post({"type": "threads.explode", "params": {}}), 400)
    assert unknown["code"] == "invalid_request"
    assert "threads.explode" in unknown["detail"]
    assert "threads.create" in unknown["detail"] and "threads.list" in unknown["detail"]


async def test_feedback_on_more_items_than_a_page_is_400(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("hi"))
    thread_id, _ = await client.create_thread("hello")
    # More ids than a database takes bind parameters in one statement.
    ids = [f"m{i}" for i in range(40_000)]
    body = {
        "type": "items.feedback",
        "params": {"thread_id": thread_id, "item_ids": ids, "kind": "positive"},
    }
    assert problem(await client.post(body), 400)["code"] == "invalid_request"
    ok = {**body, "params": {**body["params"], "item_ids": ids[:100]}}
    assert (await client.post(ok)).status_code == 200


# the rules themselves ----------------------------------------------------------------


def test_storable_json_drops_nul_and_replaces_lone_surrogates_only() -> None:
    def item(text: str) -> UserMessageItem:
        return UserMessageItem(
            id="msg_1",
            thread_id="thr_1",
            created_at=datetime(2026, 1, 1),
            content=[UserMessageTextContent(text=text)],
            inference_options=InferenceOptions(),
        )

    # The common case is pydantic's own JSON, untouched; a literal "\u0000" text is kept.
    plain = item("tab\there \\u0000 literally, é")
    assert storable_json(plain) == plain.model_dump_json()
    cleaned = json.loads(storable_json(item("a\x00b\ud800c")))
    assert cleaned["content"][0]["text"] == "ab\ufffdc"
    assert UserMessageItem.model_validate(cleaned).content[0].text == "ab\ufffdc"


@pytest.mark.parametrize(
    ("value", "free", "name"),
    [
        ("plain words", None, None),
        ("tab\tnew\nline", None, "contains a control character (U+0009)"),
        ("nul\x00", "contains a NUL character (U+0000)", "contains a NUL character (U+0000)"),
        ("esc\x1b", None, "contains a control character (U+001B)"),
        ("del\x7f", None, "contains a control character (U+007F)"),
        ("c1\x85", None, "contains a control character (U+0085)"),
        ("lone\ud800", "contains an unpaired surrogate (not valid Unicode)", None),
        ("emoji \U0001f600 and ü", None, None),
    ],
)
def test_free_text_and_name_rules(value: str, free: str | None, name: str | None) -> None:
    assert free_text_problem(value) == free
    assert name_problem(value) == (name or free)
