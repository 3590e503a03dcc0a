"""Every bad request gets a clear status code before any stream starts: never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from chatkit.types import LockedStatus, ThreadMetadata

from chatkit_backend.chat.store import SQLStore
from chatkit_backend.config import load_settings
from chatkit_backend.context import RequestContext
from chatkit_backend.db import create_engine

from .live import ChatKitClient, user_input
from .scripted_provider import ScriptedProvider, Text

OTHER_USER = RequestContext(user_id="someone-else")


@pytest.fixture
async def store(database_url: str, server_url: str) -> AsyncIterator[SQLStore]:
    """A second way into the server's database, to plant rows the API cannot make."""
    engine = create_engine(load_settings(database_url=database_url).async_database_url)
    try:
        yield SQLStore(engine)
    finally:
        await engine.dispose()


def assert_problem(response: object, status: int) -> dict[str, object]:
    assert getattr(response, "status_code", None) == status, getattr(response, "text", "")
    headers = getattr(response, "headers", {})
    assert headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status and body["detail"]
    return body


async def test_malformed_json_is_400(client: ChatKitClient) -> None:
    assert_problem(await client.post(b"{not json"), 400)


async def test_unknown_type_is_400(client: ChatKitClient) -> None:
    assert_problem(await client.post({"type": "threads.explode", "params": {}}), 400)


async def test_invalid_params_are_400(client: ChatKitClient) -> None:
    assert_problem(await client.post({"type": "threads.get_by_id", "params": {}}), 400)
    bad_input = {"type": "threads.create", "params": {"input": {"content": "x"}}}
    assert_problem(await client.post(bad_input), 400)


async def test_a_body_over_the_limit_is_413(client: ChatKitClient) -> None:
    text = "x" * (1024 * 1024 + 10)
    body = {"type": "threads.create", "params": {"input": user_input(text)}}
    assert_problem(await client.post(body), 413)


async def test_empty_and_overlong_messages_are_400(client: ChatKitClient) -> None:
    empty = {"type": "threads.create", "params": {"input": user_input("   ")}}
    assert_problem(await client.post(empty), 400)
    long = {"type": "threads.create", "params": {"input": user_input("y" * 4001)}}
    assert "limit" in str(assert_problem(await client.post(long), 400)["detail"])


async def test_unknown_thread_is_404_for_json_and_streaming_requests(
    client: ChatKitClient,
) -> None:
    missing = "thr_doesnotexist"
    requests = [
        {"type": "threads.get_by_id", "params": {"thread_id": missing}},
        {"type": "items.list", "params": {"thread_id": missing}},
        {"type": "threads.update", "params": {"thread_id": missing, "title": "t"}},
        {"type": "threads.delete", "params": {"thread_id": missing}},
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": missing, "input": user_input("hi")},
        },
        {"type": "threads.retry_after_item", "params": {"thread_id": missing, "item_id": "m"}},
        {"type": "threads.add_client_tool_output", "params": {"thread_id": missing, "result": 1}},
        {
            "type": "threads.custom_action",
            "params": {"thread_id": missing, "action": {"type": "x", "payload": {}}},
        },
    ]
    for body in requests:
        assert_problem(await client.post(body), 404)


async def test_another_users_thread_is_404_for_every_request_type(
    client: ChatKitClient, store: SQLStore
) -> None:
    foreign = ThreadMetadata(id="thr_foreign0001", created_at=datetime.now(), title="secret")
    await store.save_thread(foreign, OTHER_USER)
    tid = foreign.id
    requests = [
        {"type": "threads.get_by_id", "params": {"thread_id": tid}},
        {"type": "items.list", "params": {"thread_id": tid}},
        {"type": "threads.update", "params": {"thread_id": tid, "title": "mine now"}},
        {"type": "threads.delete", "params": {"thread_id": tid}},
        {
            "type": "items.feedback",
            "params": {"thread_id": tid, "item_ids": ["x"], "kind": "positive"},
        },
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": tid, "input": user_input("hi")},
        },
        {"type": "threads.retry_after_item", "params": {"thread_id": tid, "item_id": "m"}},
        {"type": "threads.add_client_tool_output", "params": {"thread_id": tid, "result": 1}},
        {
            "type": "threads.custom_action",
            "params": {"thread_id": tid, "action": {"type": "x", "payload": {}}},
        },
        {
            "type": "threads.sync_custom_action",
            "params": {"thread_id": tid, "action": {"type": "x", "payload": {}}},
        },
    ]
    for body in requests:
        assert_problem(await client.post(body), 404)
    listed = await client.call("threads.list", limit=100)
    assert all(t["id"] != tid for t in listed["data"])
    still = await store.load_thread(tid, OTHER_USER)
    assert still.title == "secret"


async def test_unknown_item_is_404_and_a_non_user_item_is_400_for_retry(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("reply"))
    thread_id, events = await client.create_thread("hello")
    assistant_id = [e for e in events if e["type"] == "thread.item.done"][-1]["item"]["id"]
    retry = {"type": "threads.retry_after_item", "params": {"thread_id": thread_id}}
    retry["params"]["item_id"] = "msg_missing"
    assert_problem(await client.post(retry), 404)
    retry["params"]["item_id"] = assistant_id
    assert_problem(await client.post(retry), 400)


async def test_tool_output_without_a_pending_call_is_409(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("reply"))
    thread_id, _ = await client.create_thread("hello")
    body = {
        "type": "threads.add_client_tool_output",
        "params": {"thread_id": thread_id, "result": {"ok": True}},
    }
    assert_problem(await client.post(body), 409)


async def test_a_locked_thread_refuses_new_messages(
    client: ChatKitClient, provider: ScriptedProvider, store: SQLStore
) -> None:
    provider.enqueue(Text("reply"))
    thread_id, _ = await client.create_thread("hello")
    thread = await store.load_thread(thread_id, RequestContext(user_id="local"))
    thread.status = LockedStatus(reason="archived")
    await store.save_thread(thread, RequestContext(user_id="local"))
    body = {
        "type": "threads.add_user_message",
        "params": {"thread_id": thread_id, "input": user_input("more")},
    }
    problem = assert_problem(await client.post(body), 409)
    assert "locked" in str(problem["detail"])
    assert len(await client.items(thread_id)) == 2, "nothing was added"


async def test_transcription_says_not_enabled_and_unknown_attachments_are_404(
    client: ChatKitClient,
) -> None:
    body = {
        "type": "input.transcribe",
        "params": {"audio_base64": "AAAA", "mime_type": "audio/webm"},
    }
    assert "not enabled" in str(assert_problem(await client.post(body), 400)["detail"])
    gone = {"type": "attachments.delete", "params": {"attachment_id": "atc_1"}}
    assert assert_problem(await client.post(gone), 404)["code"] == "attachment_not_found"
    unknown = {**user_input("look"), "attachments": ["atc_0123456789abcdef"]}
    sent = await client.post({"type": "threads.create", "params": {"input": unknown}})
    assert assert_problem(sent, 404)["code"] == "attachment_not_found"


async def test_thread_list_limit_is_capped_and_update_delete_work(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("reply"))
    thread_id, _ = await client.create_thread("hello")
    page = await client.call("threads.list", limit=100000)
    assert [t["id"] for t in page["data"]] == [thread_id]
    renamed = await client.call("threads.update", thread_id=thread_id, title="Renamed")
    assert renamed["title"] == "Renamed"
    assert await client.call("threads.delete", thread_id=thread_id) == {}
    gone = await client.post({"type": "threads.get_by_id", "params": {"thread_id": thread_id}})
    assert_problem(gone, 404)
