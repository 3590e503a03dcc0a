"""The OpenAI client's chunk fast path builds what the stock client builds."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from openai import AsyncOpenAI
from openai import _base_client as openai_base_client
from openai.types.chat import ChatCompletionChunk

from chatkit_backend.agent.openai_client import ChunkValidatingOpenAI

from .scripted_provider import Call, ScriptedProvider, Text, ToolCalls

CHUNK: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1700000000,
    "model": "m",
    "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
    "x_provider_extra": {"kept": True},
}


def parse(client: AsyncOpenAI, data: dict[str, Any]) -> ChatCompletionChunk:
    parsed: ChatCompletionChunk = client._process_response_data(
        data=data, cast_to=ChatCompletionChunk, response=httpx2.Response(200)
    )
    return parsed


def clients() -> tuple[AsyncOpenAI, AsyncOpenAI]:
    options: dict[str, Any] = {"api_key": "k", "base_url": "http://127.0.0.1:9/v1"}
    return ChunkValidatingOpenAI(**options), AsyncOpenAI(**options)


def test_a_well_formed_chunk_is_validated_into_the_same_object() -> None:
    fast, stock = clients()
    ours, theirs = parse(fast, CHUNK), parse(stock, CHUNK)
    assert ours == theirs
    # pydantic-core counts extra fields as set, the client's construction does not:
    # so this one was validated.
    assert ours.model_fields_set == theirs.model_fields_set | {"x_provider_extra"}
    assert ours.choices[0].delta.model_fields_set == {"content"}
    assert ours.model_extra == {"x_provider_extra": {"kept": True}}


def test_a_chunk_the_validator_refuses_is_built_leniently_as_before() -> None:
    odd = {**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "eos"}]}
    with pytest.raises(Exception, match="finish_reason"):
        ChatCompletionChunk.model_validate(odd)
    fast, stock = clients()
    ours = parse(fast, odd)
    assert ours.choices[0].finish_reason == "eos"
    assert ours == parse(stock, odd)


def comparable(chunk: ChatCompletionChunk) -> dict[str, Any]:
    """The chunk without what differs between two streams of one reply."""
    return chunk.model_dump(exclude={"id", "created"})


async def stream_chunks(client: AsyncOpenAI) -> list[ChatCompletionChunk]:
    stream = await client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    return [chunk async for chunk in stream]


async def test_streamed_replies_parse_alike_over_http(monkeypatch: pytest.MonkeyPatch) -> None:
    constructed: list[object] = []
    lenient = openai_base_client.construct_type

    def counting_construct(**kwargs: Any) -> object:
        constructed.append(kwargs["type_"])
        return lenient(**kwargs)

    monkeypatch.setattr(openai_base_client, "construct_type", counting_construct)
    replies = [
        Text("Hello there, this is a reply.", usage=(11, 7)),
        ToolCalls(
            [Call("add_task", {"title": "milk"}, "call_1"), Call("list_tasks", {}, "call_2")],
            text="On it",
        ),
    ]
    with ScriptedProvider() as provider:
        base = {"api_key": "k", "base_url": provider.base_url, "max_retries": 0}
        fast, stock = ChunkValidatingOpenAI(**base), AsyncOpenAI(**base)
        for reply in replies:
            provider.enqueue(reply, reply)
            ours = await stream_chunks(fast)
            assert constructed == []
            theirs = await stream_chunks(stock)
            assert len(constructed) == len(theirs)
            constructed.clear()
            assert len(ours) > 3
            assert [comparable(c) for c in ours] == [comparable(c) for c in theirs]
            assert all(type(c) is ChatCompletionChunk for c in ours)
        await fast.close()
        await stock.close()
