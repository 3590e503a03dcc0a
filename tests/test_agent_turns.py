"""What one turn may send the model and how long it may go on: HISTORY_ITEMS and the cap on
agent turns (chat/server.py MAX_AGENT_TURNS), against the scripted provider."""

from __future__ import annotations

from typing import Any

import pytest

from chatkit_backend.chat.server import MAX_AGENT_TURNS, MAX_TURNS_MESSAGE

from .conftest import is_title_request
from .live import ChatKitClient, assistant_text
from .scripted_provider import Call, ScriptedProvider, Text, ToolCalls


def chat_requests(provider: ScriptedProvider) -> list[dict[str, Any]]:
    return [r for r in provider.requests if not is_title_request(r)]


def conversation(request: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of the thread's messages in a request, without the instructions."""
    return [(m["role"], m["content"]) for m in request["messages"] if m["role"] != "system"]


async def test_a_model_that_calls_tools_forever_is_stopped_with_a_clear_error(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    looping = True
    provider.route(
        lambda body: looping and not is_title_request(body),
        ToolCalls([Call("list_tasks", {})]),
    )
    thread_id, events = await client.create_thread("list my tasks")

    assert len(chat_requests(provider)) == MAX_AGENT_TURNS, "one request per allowed turn"
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1 and events[-1] == errors[0], "the stream ends with the error"
    assert errors[0]["message"] == MAX_TURNS_MESSAGE
    assert "too many steps" in MAX_TURNS_MESSAGE
    assert errors[0]["allow_retry"] is True

    # The thread stays usable: the message is kept, the next one is answered.
    looping = False
    provider.enqueue(Text("Here you go."))
    assert assistant_text(await client.send(thread_id, "try again")) == "Here you go."
    users = [i for i in await client.items(thread_id) if i["type"] == "user_message"]
    assert [u["content"][0]["text"] for u in users] == ["list my tasks", "try again"]


@pytest.mark.parametrize("server_options", [{"history_items": 4}])
async def test_the_model_sees_exactly_the_newest_history_items(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    # Each turn stores the user's message and the echoed reply: two items.
    thread_id, _ = await client.create_thread("one")
    await client.send(thread_id, "two")
    await client.send(thread_id, "three")

    assert len(await client.items(thread_id)) == 6
    # While "three" is answered the thread holds five items; the newest four go to the model.
    first, second, third = chat_requests(provider)
    assert conversation(first) == [("user", "one")]
    assert conversation(second) == [("user", "one"), ("assistant", "Echo: one"), ("user", "two")]
    assert conversation(third) == [
        ("assistant", "Echo: one"),
        ("user", "two"),
        ("assistant", "Echo: two"),
        ("user", "three"),
    ]
