"""HistoryConverter: thread items become plain-string messages Chat Completions accepts."""

from __future__ import annotations

from datetime import datetime

from agents.models.chatcmpl_converter import Converter
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    InferenceOptions,
    SDKHiddenContextItem,
    ThreadItem,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
)

from chatkit_backend.chat.history import HistoryConverter

THREAD = "thr_1"


def user(item_id: str, *parts: str, quoted_text: str | None = None) -> UserMessageItem:
    return UserMessageItem(
        id=item_id,
        thread_id=THREAD,
        created_at=datetime.now(),
        content=[UserMessageTextContent(text=p) for p in parts],
        quoted_text=quoted_text,
        inference_options=InferenceOptions(),
    )


def assistant(item_id: str, *parts: str) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=item_id,
        thread_id=THREAD,
        created_at=datetime.now(),
        content=[AssistantMessageContent(text=p) for p in parts],
    )


def conversation() -> list[ThreadItem]:
    return [
        user("msg_1", "Add milk ", "to my list"),
        assistant("msg_2", "Added ", "milk."),
        user("msg_3", "And eggs"),
    ]


async def convert(items: list[ThreadItem]) -> list[dict[str, object]]:
    return await HistoryConverter().to_agent_input(items)  # type: ignore[return-value]


async def test_user_and_assistant_messages_are_plain_strings() -> None:
    out = await convert(conversation())
    assert out == [
        {"role": "user", "content": "Add milk to my list"},
        {"role": "assistant", "content": "Added milk."},
        {"role": "user", "content": "And eggs"},
    ]
    assert all(isinstance(message["content"], str) for message in out)


async def test_quoted_text_only_for_the_last_message() -> None:
    items: list[ThreadItem] = [
        user("msg_1", "first", quoted_text="old quote"),
        assistant("msg_2", "ok"),
        user("msg_3", "what about this?", quoted_text="Buy eggs"),
    ]
    out = await convert(items)
    texts = [m["content"] for m in out]
    assert all(isinstance(t, str) for t in texts)
    assert not any("old quote" in t for t in texts)  # type: ignore[operator]
    assert out[-2] == {"role": "user", "content": "what about this?"}
    assert out[-1]["role"] == "user"
    assert "Buy eggs" in out[-1]["content"]  # type: ignore[operator]


async def test_tags_render_as_mentions() -> None:
    item = user("msg_1", "ask ")
    item.content.append(UserMessageTagContent(id="t1", text="alice", data={}))
    assert await convert([item]) == [{"role": "user", "content": "ask @alice"}]


async def test_empty_assistant_message_is_dropped() -> None:
    out = await convert([user("msg_1", "hi"), assistant("msg_2", "  "), user("msg_3", "hello?")])
    assert [m["role"] for m in out] == ["user", "user"]


async def test_sdk_hidden_context_becomes_a_user_string() -> None:
    hidden = SDKHiddenContextItem(
        id="shcx_1", thread_id=THREAD, created_at=datetime.now(), content="task 42 is done"
    )
    out = await convert([user("msg_1", "hi"), hidden])
    assert out[-1]["role"] == "user"
    assert isinstance(out[-1]["content"], str)
    assert "task 42 is done" in out[-1]["content"]


async def test_chat_completions_converter_accepts_the_history() -> None:
    hidden = SDKHiddenContextItem(
        id="shcx_1", thread_id=THREAD, created_at=datetime.now(), content="note"
    )
    items: list[ThreadItem] = [
        user("msg_1", "Add milk"),
        assistant("msg_2", "Added milk."),
        hidden,
        user("msg_3", "And this", quoted_text="eggs"),
    ]
    model_input = await HistoryConverter().to_agent_input(items)

    messages = Converter.items_to_messages(model_input)

    assert [m["role"] for m in messages] == ["user", "assistant", "user", "user", "user"]
    assert all(isinstance(m["content"], str) for m in messages)
    assert messages[1]["content"] == "Added milk."
    assert messages[3]["content"] == "And this"
