"""Contract tests: the seed project's own frontend (maneeshanif/todo-spec-driven) against
this server over real HTTP, on SQLite and PostgreSQL.

Its client logic is reproduced in tests/seed_frontend.py, rule by rule with where each
comes from; its users sign in with Better Auth, whose JWT plugin signs EdDSA tokens
served by a JWKS endpoint, so the server here verifies exactly such tokens.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatkit_backend.auth import issue_token

from .conftest import is_title_request, scripted_settings
from .databases import sqlite_url
from .live import live_server, parse_sse, user_input
from .scripted_provider import Call, Error, ScriptedProvider, Text, ToolCalls
from .seed_frontend import (
    UNDEFINED,
    AxiosError,
    ChatApi,
    ConversationStore,
    chatkit_proxy,
    stream_chat_message,
)
from .test_auth import NO_AUTH, SECRET, KeyServer, SigningKey, auth_settings

# Better Auth's baseURL in its lib/auth.ts: the JWT plugin's `iss` and `aud`.
APP_URL = "http://localhost:3000"
AGENT = "Todo assistant"


def better_auth_jwks(signer: SigningKey) -> bytes:
    """/api/auth/jwks as Better Auth serves it: the public key and its `kid`, no `alg`/`use`."""
    key = {k: v for k, v in signer.jwk().items() if k not in {"alg", "use"}}
    return json.dumps({"keys": [key]}).encode()


def better_auth_token(signer: SigningKey, user_id: str) -> str:
    """What its authClient.token() stores as `bearer_token`: the user, `sub`, iss/aud, 7 days."""
    now = int(time.time())
    user = {
        "id": user_id,
        "email": f"{user_id}@example.test",
        "name": user_id.title(),
        "emailVerified": False,
        "image": None,
        "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-01-01T00:00:00.000Z",
    }
    claims = {**user, "iat": now, "exp": now + 7 * 86400, "iss": APP_URL, "aud": APP_URL}
    return signer.token({**claims, "sub": user_id})


@pytest.fixture
def signer() -> SigningKey:
    return SigningKey.generate("EdDSA")


@pytest.fixture
def server_options(signer: SigningKey) -> Iterator[dict[str, Any]]:
    with KeyServer(signer) as keys:
        keys.body = better_auth_jwks(signer)
        yield {**NO_AUTH, "auth_jwks_url": keys.url}


@pytest.fixture
async def http(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        yield client


@pytest.fixture
def alice(signer: SigningKey) -> str:
    return better_auth_token(signer, "alice")


@pytest.fixture
def bob(signer: SigningKey) -> str:
    return better_auth_token(signer, "bob")


def text_of(recorded: Any) -> str:
    return "".join(content for (content,) in recorded.named("onToken"))


def chat_requests(provider: ScriptedProvider) -> list[dict[str, Any]]:
    return [r for r in provider.requests if not is_title_request(r)]


def is_iso_datetime_with_zone(value: Any) -> bool:
    # Its sidebar does `new Date(updated_at)`: without a zone that is read as local time.
    return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None


async def new_conversation(
    http: httpx.AsyncClient, provider: ScriptedProvider, token: str, text: str, reply: str
) -> str:
    provider.enqueue(Text(reply))
    recorded = await stream_chat_message(http, token, None, text)
    ((conversation_id, _),) = recorded.named("onDone")
    assert isinstance(conversation_id, str)
    return conversation_id


# its streaming chat -----------------------------------------------------------------------------


async def test_a_turn_with_a_tool_call_fires_every_callback_in_order(
    http: httpx.AsyncClient, provider: ScriptedProvider, alice: str
) -> None:
    provider.enqueue(
        ToolCalls([Call("add_task", {"title": "Buy bread"}, call_id="call_add1")]),
        Text("Added **Buy bread**."),
    )
    first = await stream_chat_message(http, alice, None, "add a task to buy bread")

    assert first.warnings == [], "every event has a name its client knows, and parses"
    names = first.names
    assert names[:4] == ["onThinking", "onAgentUpdated", "onToolCall", "onToolResult"]
    assert set(names[4:-1]) == {"onToken"} and names[-1] == "onDone"
    assert first.named("onThinking") == [("Processing your request...", AGENT)]
    assert first.named("onAgentUpdated") == [(AGENT, "")]
    assert first.named("onToolCall") == [
        ({"id": "call_add1", "tool": "add_task", "arguments": {"title": "Buy bread"}},)
    ]
    ((call_id, output),) = first.named("onToolResult")
    assert call_id == "call_add1"
    assert output["ok"] is True and output["task"]["title"] == "Buy bread"
    assert text_of(first) == "Added **Buy bread**."
    ((conversation_id, message_id),) = first.named("onDone")
    assert conversation_id.startswith("thr_") and message_id.startswith("msg_")

    # Its store keeps the id from `done` and sends it with the next message.
    provider.enqueue(Text("It is on your list."))
    second = await stream_chat_message(http, alice, conversation_id, "is it there?")
    assert second.warnings == []
    assert second.names[:2] == ["onThinking", "onAgentUpdated"]
    assert text_of(second) == "It is on your list."
    ((same_id, second_message_id),) = second.named("onDone")
    assert same_id == conversation_id
    history = json.dumps(chat_requests(provider)[-1]["messages"])
    assert "add a task to buy bread" in history and "call_add1" in history

    # Opened from the sidebar: the same messages, ids and tool call as the stream showed.
    opened = await ChatApi(http, alice).get_conversation(conversation_id)
    assert [(m["role"], m["content"]) for m in opened["messages"]] == [
        ("user", "add a task to buy bread"),
        ("assistant", "Added **Buy bread**."),
        ("user", "is it there?"),
        ("assistant", "It is on your list."),
    ]
    assert [m["id"] for m in opened["messages"]][1::2] == [message_id, second_message_id]
    assert {m["conversation_id"] for m in opened["messages"]} == {conversation_id}
    (tool_call,) = opened["messages"][1]["tool_calls"]
    assert tool_call == {
        "id": "call_add1",
        "tool": "add_task",
        "arguments": {"title": "Buy bread"},
        "result": output,
    }
    assert opened["messages"][3]["tool_calls"] is None
    assert all(is_iso_datetime_with_zone(m["created_at"]) for m in opened["messages"])


async def test_the_seeds_data_only_format_still_works_beside_it(
    http: httpx.AsyncClient, provider: ScriptedProvider, alice: str
) -> None:
    auth = {"authorization": f"Bearer {alice}"}
    conversation_id = await new_conversation(http, provider, alice, "hello", "Hi.")

    # No `conversation_id` in the body: the documented format, continuing the same thread.
    provider.enqueue(Text("Hi again."))
    body = {"message": "hello again", "thread_id": conversation_id}
    response = await http.post("/api/chat/stream", json=body, headers=auth)
    assert response.status_code == 200
    assert "event:" not in response.text
    frames = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    events = [json.loads(f) for f in frames[:-1]]
    assert events[0]["type"] == "thinking"
    assert "".join(e["content"] for e in events if e["type"] == "text") == "Hi again."
    assert events[-1]["type"] == "done" and events[-1]["thread_id"] == conversation_id

    opened = await ChatApi(http, alice).get_conversation(conversation_id)
    assert opened["message_count"] == 4


async def test_a_failed_turn_reaches_on_error_and_the_stream_ends(
    http: httpx.AsyncClient, provider: ScriptedProvider, alice: str
) -> None:
    provider.enqueue(*[Error(500)] * 3)
    recorded = await stream_chat_message(http, alice, None, "hello?")
    # As from its old backend: an error ends the turn, no `done` follows.
    assert recorded.names == ["onThinking", "onAgentUpdated", "onError"]
    ((message,),) = recorded.named("onError")
    assert "try" in message.lower()

    # The message is kept: the conversation is in the sidebar and can go on.
    (conversation,) = (await ChatApi(http, alice).get_conversations())["conversations"]
    assert conversation["message_count"] == 1
    provider.enqueue(Text("Back."))
    again = await stream_chat_message(http, alice, conversation["id"], "hello?")
    assert text_of(again) == "Back."


REFUSED_MESSAGES: list[tuple[Any, str, int, str]] = [
    (None, "   ", 400, "Message is required"),
    (None, "x" * 4001, 400, "Message is too long"),
    ("thr_nope", "hi", 404, "not found"),
    (5, "hi", 404, "not found"),  # its types say number: no such conversation here
]


async def test_a_refused_message_reaches_on_error_with_its_status(
    http: httpx.AsyncClient, provider: ScriptedProvider, alice: str
) -> None:
    for conversation_id, message, status, detail in REFUSED_MESSAGES:
        recorded = await stream_chat_message(http, alice, conversation_id, message)
        ((error,),) = recorded.named("onError")
        assert recorded.names == ["onError"]
        assert error.startswith(f"Stream request failed: {status} - ")
        assert detail in json.loads(error.split(" - ", 1)[1])["detail"]
    assert provider.requests == [], "nothing reached the model"


async def test_another_users_conversation_is_not_found(
    http: httpx.AsyncClient, provider: ScriptedProvider, alice: str, bob: str
) -> None:
    bobs = await new_conversation(http, provider, bob, "bob's secret", "Noted.")
    recorded = await stream_chat_message(http, alice, bobs, "let me in")
    ((error,),) = recorded.named("onError")
    assert error.startswith("Stream request failed: 404 - ")
    api = ChatApi(http, alice)
    for attempt in (
        api.get_conversation(bobs),
        api.update_conversation(bobs, {"title": "mine"}),
        api.delete_conversation(bobs),
        api.send_message({"conversation_id": bobs, "message": "hi"}),
    ):
        with pytest.raises(AxiosError) as refused:
            await attempt
        assert refused.value.response.status_code == 404
    status, _, _ = await chatkit_proxy(
        http, alice, f"?conversation_id={bobs}", _threads_create("let me in")
    )
    assert status == 404
    assert (await api.get_conversations())["total"] == 0
    bobs_view = await ChatApi(http, bob).get_conversation(bobs)
    assert bobs_view["title"] is not None and bobs_view["message_count"] == 2


HOSTILE_CHAT_BODIES: list[tuple[bytes, int]] = [
    (b'{"conversation_id": true, "message": "hi"}', 422),
    (b'{"conversation_id": {"id": 1}, "message": "hi"}', 422),
    (b'{"conversation_id": "' + b"t" * 65 + b'", "message": "hi"}', 422),
    (b'{"conversation_id": null, "message": 5}', 422),
    (b'{"conversation_id": null}', 422),
    (b'{"conversation_id": null, "message": "hi", "verbose": "yes"}', 422),
    (
        b'{"conversation_id": null, "message": "hi", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        400,
    ),
    (b"[" * 100_000 + b"]" * 100_000, 400),
    (b'{"conversation_id": null, "message": "hi"', 400),
    # PostgreSQL cannot store NUL: refused at the edge on both databases (text_rules.py).
    (b'{"conversation_id": "thr_\\u0000x", "message": "hi"}', 422),
    (b'{"conversation_id": null, "message": "h\\u0000i"}', 400),
]


async def test_hostile_chat_bodies_are_refused_with_a_clear_status(
    http: httpx.AsyncClient, provider: ScriptedProvider, alice: str
) -> None:
    headers = {"authorization": f"Bearer {alice}", "content-type": "application/json"}
    for path in ("/api/chat/stream", "/api/chat"):
        for body, status in HOSTILE_CHAT_BODIES:
            response = await http.post(path, content=body, headers=headers)
            assert response.status_code == status, (path, body[:80], response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
    for hostile_id in ("thr_%00x", "thr_%1bx"):
        got = await http.get(f"/api/chat/conversations/{hostile_id}", headers=headers)
        assert got.status_code == 422, got.text
        proxied = await http.post(
            f"/api/chatkit?conversation_id={hostile_id}",
            content=_threads_create("hi"),
            headers=headers,
        )
        assert proxied.status_code == 422, proxied.text
    assert provider.requests == []


async def test_signed_out_it_sends_bearer_null_and_reports_the_401(
    http: httpx.AsyncClient, provider: ScriptedProvider
) -> None:
    # No token in localStorage: its SSE client still sends `Bearer ${token}`.
    recorded = await stream_chat_message(http, None, None, "hi")
    ((error,),) = recorded.named("onError")
    assert error.startswith("Stream request failed: 401 - ")
    detail = json.loads(error.split(" - ", 1)[1])["detail"]
    assert "'null'" in detail and "signed in" in detail
    undefined = await http.get(
        "/api/chat/conversations", headers={"authorization": "Bearer undefined"}
    )
    assert undefined.status_code == 401 and "'undefined'" in undefined.json()["detail"]
    assert undefined.headers["www-authenticate"] == "Bearer"
    # Its axios client sends no Authorization header at all then.
    with pytest.raises(AxiosError) as refused:
        await ChatApi(http, None).get_conversations()
    assert refused.value.response.status_code == 401
    store = ConversationStore(ChatApi(http, None))
    await store.fetch_conversations()
    assert store.error == "Failed to load conversations"
    assert provider.requests == []


# its non-streaming chat ---------------------------------------------------------------------------


async def test_send_message_answers_as_a_whole_and_continues_the_conversation(
    http: httpx.AsyncClient, provider: ScriptedProvider, alice: str
) -> None:
    api = ChatApi(http, alice)
    provider.enqueue(
        ToolCalls([Call("list_tasks", {}, call_id="call_list1")]), Text("You have no tasks.")
    )
    answer = await api.send_message({"message": "show my tasks"})
    assert answer["response"] == "You have no tasks."
    assert answer["conversation_id"].startswith("thr_")
    assert answer["message_id"].startswith("msg_")
    (call,) = answer["tool_calls"]
    assert call["id"] == "call_list1" and call["tool"] == "list_tasks"
    assert call["arguments"] == {} and call["result"]["ok"] is True

    provider.enqueue(Text("Still none."))
    again = await api.send_message(
        {"conversation_id": answer["conversation_id"], "message": "and now?", "verbose": False}
    )
    assert again["conversation_id"] == answer["conversation_id"]
    assert again["tool_calls"] is None and again["response"] == "Still none."
    opened = await api.get_conversation(answer["conversation_id"])
    assert [m["id"] for m in opened["messages"]][1::2] == [
        answer["message_id"],
        again["message_id"],
    ]

    provider.enqueue(*[Error(500)] * 3)
    with pytest.raises(AxiosError) as failed:
        await api.send_message({"conversation_id": answer["conversation_id"], "message": "?"})
    assert failed.value.response.status_code == 503
    assert "try" in failed.value.response.json()["detail"].lower()
    # The thread is free again: the failed turn released it.
    provider.enqueue(Text("Here."))
    last = await api.send_message({"conversation_id": answer["conversation_id"], "message": "?"})
    assert last["response"] == "Here."


# its conversation sidebar ------------------------------------------------------------------------


async def test_the_sidebar_lists_opens_renames_and_deletes(
    http: httpx.AsyncClient, provider: ScriptedProvider, alice: str, bob: str
) -> None:
    ids = [
        await new_conversation(http, provider, alice, f"question {n}", f"answer {n}")
        for n in range(3)
    ]
    api = ChatApi(http, alice)

    first_page = await api.get_conversations(1, 2)
    assert (first_page["total"], first_page["page"], first_page["page_size"]) == (3, 1, 2)
    assert [c["id"] for c in first_page["conversations"]] == [ids[2], ids[1]], "newest first"
    second_page = await api.get_conversations(2, 2)
    assert [c["id"] for c in second_page["conversations"]] == [ids[0]]
    assert (await api.get_conversations(3, 2))["conversations"] == []
    assert (await api.get_most_recent_conversation())["id"] == ids[2]

    listed = first_page["conversations"][0]
    assert listed["user_id"] == "alice"
    assert listed["title"] == "Scripted title"
    assert listed["message_count"] == 2 and listed["preview"] == "answer 2"
    assert listed["messages"] is None
    assert is_iso_datetime_with_zone(listed["created_at"])
    assert is_iso_datetime_with_zone(listed["updated_at"])

    store = ConversationStore(api)
    await store.fetch_conversations()
    assert [c["id"] for c in store.conversations] == ids[::-1]

    await store.select_conversation(ids[1])
    assert store.error is None and store.current is not None
    assert store.current["id"] == ids[1]
    assert [(m["role"], m["content"]) for m in store.messages] == [
        ("user", "question 1"),
        ("assistant", "answer 1"),
    ]

    await store.rename_conversation(ids[1], "  Groceries  ")
    assert store.error is None
    assert store.current["title"] == "Groceries"
    assert [c["title"] for c in store.conversations if c["id"] == ids[1]] == ["Groceries"]
    assert (await api.get_conversation(ids[1]))["title"] == "Groceries"

    await store.delete_conversation(ids[1])
    assert store.error is None
    assert store.current is None and store.messages == []
    assert [c["id"] for c in store.conversations] == [ids[2], ids[0]]
    await store.select_conversation(ids[1])
    assert store.error == "Failed to load conversation"
    with pytest.raises(AxiosError) as gone:
        await api.delete_conversation(ids[1])
    assert gone.value.response.status_code == 404
    assert (await api.get_conversations())["total"] == 2

    # Another user's sidebar is their own, and cannot touch these.
    others = ConversationStore(ChatApi(http, bob))
    await others.fetch_conversations()
    assert others.conversations == []
    await others.rename_conversation(ids[0], "stolen")
    assert others.error == "Failed to rename conversation"
    await others.delete_conversation(ids[0])
    assert others.error == "Failed to delete conversation"
    assert (await api.get_conversation(ids[0]))["title"] == "Scripted title"


BAD_PAGES: list[dict[str, Any]] = [
    {"page": 0},
    {"page": -1},
    {"page": 10_001},
    {"page": 10**30},
    {"page": "one"},
    {"page_size": 0},
    {"page_size": 101},
    {"page_size": -5},
]


async def test_bad_page_parameters_are_422(http: httpx.AsyncClient, alice: str) -> None:
    for query in BAD_PAGES:
        response = await http.get(
            "/api/chat/conversations", params=query, headers={"authorization": f"Bearer {alice}"}
        )
        assert response.status_code == 422, (query, response.text)
        assert response.json()["detail"][0]["loc"][0] == "query"


BAD_TITLES: list[tuple[str, int]] = [
    (json.dumps({"title": ""}), 422),
    (json.dumps({"title": "   "}), 422),
    (json.dumps({"title": "a\u0000b"}), 422),
    (json.dumps({"title": "two\nlines"}), 422),
    (json.dumps({"title": "tab\there"}), 422),
    (json.dumps({"title": "bell\u0007"}), 422),
    (json.dumps({"title": "del\u007f"}), 422),
    (json.dumps({"title": "c1\u0085inside"}), 422),
    (json.dumps({"title": "csi\u009b[2J"}), 422),
    (json.dumps({"title": "sep\u2028arator"}), 422),
    ('{"title": "lone \\ud800 surrogate"}', 422),
    (json.dumps({"title": "x" * 201}), 422),
    (json.dumps({"title": 5}), 422),
    (json.dumps({"title": "ok", "user_id": "bob"}), 422),
    (json.dumps({}), 422),
    ('{"title": ' + "[" * 100_000 + "]" * 100_000 + "}", 400),
]


async def test_bad_titles_are_refused_and_nothing_changes(
    http: httpx.AsyncClient, provider: ScriptedProvider, alice: str
) -> None:
    conversation_id = await new_conversation(http, provider, alice, "hello", "Hi.")
    for body, status in BAD_TITLES:
        response = await http.put(
            f"/api/chat/conversations/{conversation_id}",
            content=body.encode("utf-8", "surrogatepass"),
            headers={"authorization": f"Bearer {alice}", "content-type": "application/json"},
        )
        assert response.status_code == status, (body[:80], response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    conversation = await ChatApi(http, alice).get_conversation(conversation_id)
    assert conversation["title"] == "Scripted title"


async def test_a_title_with_emoji_and_accents_is_kept(
    http: httpx.AsyncClient, provider: ScriptedProvider, alice: str
) -> None:
    conversation_id = await new_conversation(http, provider, alice, "hello", "Hi.")
    title = "Família 👨\u200d👩\u200d👧 — café"
    updated = await ChatApi(http, alice).update_conversation(conversation_id, {"title": title})
    assert updated["title"] == title
    assert (await ChatApi(http, alice).get_conversation(conversation_id))["title"] == title


async def test_its_browser_may_rename_cross_origin(http: httpx.AsyncClient) -> None:
    # Its pages run on http://localhost:3000 and call this server directly (axios, fetch).
    response = await http.options(
        "/api/chat/conversations/thr_x",
        headers={
            "origin": APP_URL,
            "access-control-request-method": "PUT",
            "access-control-request-headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert "PUT" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-origin"] == APP_URL


# its ChatKit page, through its Next.js proxy ----------------------------------------------------


def _threads_create(text: str) -> bytes:
    return json.dumps({"type": "threads.create", "params": {"input": user_input(text)}}).encode()


async def test_its_chatkit_page_works_through_its_proxy(
    http: httpx.AsyncClient, provider: ScriptedProvider, alice: str
) -> None:
    # A new chat: the ChatKit protocol as on /chatkit.
    provider.enqueue(Text("Hello from ChatKit."))
    status, kind, text = await chatkit_proxy(http, alice, "", _threads_create("hi"))
    assert (status, kind) == (200, "stream")
    events = parse_sse(text)
    assert events[0]["type"] == "thread.created"
    thread_id = events[0]["thread"]["id"]

    status, kind, text = await chatkit_proxy(
        http, alice, "", json.dumps({"type": "threads.list", "params": {"limit": 10}}).encode()
    )
    assert (status, kind) == (200, "json")
    assert [t["id"] for t in json.loads(text)["data"]] == [thread_id]

    # Opened on a conversation from its sidebar (started in its streaming chat): the
    # page's threads.create continues that conversation, under the same id.
    conversation_id = await new_conversation(http, provider, alice, "first question", "One.")
    provider.enqueue(Text("Two."))
    status, kind, text = await chatkit_proxy(
        http, alice, f"?conversation_id={conversation_id}", _threads_create("second question")
    )
    assert (status, kind) == (200, "stream")
    events = parse_sse(text)
    assert events[0]["type"] == "thread.created"
    assert events[0]["thread"]["id"] == conversation_id
    assert events[0]["thread"]["title"] == "Scripted title"
    assert events[1]["type"] == "thread.item.done"
    assert events[1]["item"]["thread_id"] == conversation_id
    assert "first question" in json.dumps(chat_requests(provider)[-1]["messages"])
    opened = await ChatApi(http, alice).get_conversation(conversation_id)
    assert [m["content"] for m in opened["messages"]] == [
        "first question",
        "One.",
        "second question",
        "Two.",
    ]

    # Its next message in that page names the thread; the query is still on the URL.
    provider.enqueue(Text("Three."))
    body = {
        "type": "threads.add_user_message",
        "params": {"thread_id": conversation_id, "input": user_input("third")},
    }
    status, kind, text = await chatkit_proxy(
        http, alice, f"?conversation_id={conversation_id}", json.dumps(body).encode()
    )
    assert (status, kind) == (200, "stream")
    assert (await ChatApi(http, alice).get_conversation(conversation_id))["message_count"] == 6
    assert (await ChatApi(http, alice).get_conversations())["total"] == 2


PROXY_REFUSALS: list[tuple[str, bytes, int]] = [
    ("?conversation_id=thr_nope", _threads_create("hi"), 404),
    ("?conversation_id=", _threads_create("hi"), 422),
    ("?conversation_id=" + "t" * 65, _threads_create("hi"), 422),
    ("", b"[" * 100_000 + b"]" * 100_000, 400),
    ("?conversation_id=thr_x", b"[" * 100_000 + b"]" * 100_000, 400),
    ("", b'{"type": "threads.nope", "params": {}}', 400),
    ("", _threads_create("   "), 400),
]


async def test_its_chatkit_proxy_gets_a_clear_refusal(
    http: httpx.AsyncClient, provider: ScriptedProvider, alice: str
) -> None:
    for search, body, status in PROXY_REFUSALS:
        got, kind, text = await chatkit_proxy(http, alice, search, body)
        assert (got, kind) == (status, "error"), (search, body[:80], text)
        # Its proxy hands the text on as {"error": text}: the problem+json detail is in it.
        assert "detail" in json.loads(json.loads(text)["error"])
    assert provider.requests == []


# signing in as that app does ------------------------------------------------------------------


def test_a_better_auth_token_without_a_jwks_is_refused_and_says_why(tmp_path: Path) -> None:
    """With BETTER_AUTH_SECRET alone: its app still sends its JWT plugin's EdDSA token
    (lib/auth-client.ts generateAndStoreJwtToken), which no shared secret can verify."""
    settings = auth_settings(tmp_path, better_auth_secret=SECRET)
    signer = SigningKey.generate("EdDSA")
    with live_server(settings) as url:
        response = httpx.get(
            f"{url}/api/chat/conversations",
            headers={"authorization": f"Bearer {better_auth_token(signer, 'alice')}"},
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        detail = response.json()["detail"]
        assert "signed with EdDSA" in detail
        assert "AUTH_JWKS_URL" in detail and "/api/auth/jwks" in detail

        # A token the secret does sign (`chatkit-backend token`) works with its clients.
        token = issue_token(settings, "alice", 300)
        listed = httpx.get(
            f"{url}/api/chat/conversations", headers={"authorization": f"Bearer {token}"}
        )
        assert listed.status_code == 200
        assert listed.json() == {"conversations": [], "total": 0, "page": 1, "page_size": 20}


async def test_the_streaming_chat_runs_as_the_tokens_user(
    tmp_path: Path, provider: ScriptedProvider
) -> None:
    """`sub` or, failing that, `id` (what its old backend read) names the user."""
    signer = SigningKey.generate("EdDSA")
    with KeyServer(signer) as keys:
        keys.body = better_auth_jwks(signer)
        settings = scripted_settings(
            sqlite_url(tmp_path),
            provider,
            **{
                **NO_AUTH,
                "auth_jwks_url": keys.url,
                "auth_issuer": APP_URL,
                "auth_audience": APP_URL,
            },
        )
        with live_server(settings) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                now = int(time.time())
                only_id = signer.token(
                    {"id": "carol", "iat": now, "exp": now + 600, "iss": APP_URL, "aud": APP_URL}
                )
                provider.enqueue(Text("Hi Carol."))
                recorded = await stream_chat_message(http, only_id, None, "hi")
                assert text_of(recorded) == "Hi Carol."
                (listed,) = (await ChatApi(http, only_id).get_conversations())["conversations"]
                assert listed["user_id"] == "carol"
                other = better_auth_token(signer, "dave")
                assert (await ChatApi(http, other).get_conversations())["total"] == 0


def test_undefined_is_what_a_missing_field_reads_as() -> None:
    # The reproduction itself: a field the server left out must not pass for null.
    from .seed_frontend import Recorded, handle_sse_event

    recorded = Recorded()
    handle_sse_event("done", {"conversation_id": None}, recorded)
    assert recorded.calls == [("onDone", None, UNDEFINED)]
