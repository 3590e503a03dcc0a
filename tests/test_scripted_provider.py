"""The scripted provider talks OpenAI Chat Completions to the real clients and sees hang-ups."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import litellm
import pytest
from agents import ModelSettings
from agents.extensions.models.litellm_model import LitellmModel
from agents.models.interface import ModelTracing
from litellm.exceptions import ServiceUnavailableError

from .scripted_provider import Call, Error, Hang, Malformed, ScriptedProvider, Text, ToolCalls

USER = [{"role": "user", "content": "hi there"}]


@pytest.fixture
def provider() -> Iterator[ScriptedProvider]:
    with ScriptedProvider() as running:
        yield running


async def _stream(provider: ScriptedProvider, **kwargs: Any) -> list[Any]:
    response = await litellm.acompletion(
        model="openai/x",
        api_base=provider.base_url,
        api_key="k",
        messages=kwargs.pop("messages", USER),
        stream=True,
        **kwargs,
    )
    return [chunk async for chunk in response]


async def test_litellm_streams_text(provider: ScriptedProvider) -> None:
    provider.enqueue(Text("Hello from the script!", chunk_chars=3))
    chunks = await _stream(provider)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the script!"
    assert provider.requests[0]["stream"] is True
    assert provider.requests[0]["messages"] == USER
    record = provider.wait_for_stream_end()
    assert record.finished and not record.client_disconnected
    assert record.chunks_sent == record.chunks_planned


async def test_litellm_streams_tool_calls(provider: ScriptedProvider) -> None:
    provider.enqueue(
        ToolCalls(
            [("get_weather", {"city": "Paris"}), Call("noop", "{}", call_id="call_fixed")],
            text="Let me look.",
        )
    )
    built: Any = litellm.stream_chunk_builder(await _stream(provider))

    choice = built.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me look."
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "noop"]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert calls[0].id.startswith("call_")
    assert calls[1].id == "call_fixed"


async def test_non_streaming_route_and_echo(provider: ScriptedProvider) -> None:
    provider.route(
        lambda body: "TITLE-MARKER" in json.dumps(body["messages"][0]), Text("A Fine Title")
    )
    provider.enqueue(Text("queued"))
    for _ in range(2):
        titled = await litellm.acompletion(
            model="openai/x",
            api_base=provider.base_url,
            api_key="k",
            messages=[{"role": "system", "content": "TITLE-MARKER"}, *USER],
        )
        assert titled.choices[0].message.content == "A Fine Title"
    queued = await litellm.acompletion(
        model="openai/x", api_base=provider.base_url, api_key="k", messages=USER
    )
    echoed = await litellm.acompletion(
        model="openai/x",
        api_base=provider.base_url,
        api_key="k",
        messages=[{"role": "user", "content": [{"type": "text", "text": "ping"}]}],
    )

    assert queued.choices[0].message.content == "queued"
    assert echoed.choices[0].message.content == "Echo: ping"
    assert echoed.usage.prompt_tokens == 10
    assert len(provider.requests) == 4
    assert provider.streams == []


async def test_client_hang_up_is_seen_promptly(provider: ScriptedProvider) -> None:
    provider.enqueue(Text("x" * 100, chunk_chars=1, delay=0.02))
    async with (
        httpx.AsyncClient(base_url=provider.base_url) as client,
        client.stream(
            "POST", "/chat/completions", json={"model": "m", "stream": True, "messages": USER}
        ) as response,
    ):
        seen = 0
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                seen += 1
            if seen == 5:
                break
    closed_at = time.monotonic()

    record = await provider.wait_for_stream_end_async(timeout=2)
    assert record.client_disconnected and not record.finished
    assert record.disconnected_at is not None
    assert record.disconnected_at - closed_at < 0.25  # a dozen chunk intervals at most
    sent = record.chunks_sent
    assert 5 <= sent < 20 < record.chunks_planned
    await asyncio.sleep(0.1)  # five chunk intervals: nothing more may be written
    assert record.chunks_sent == sent


async def test_litellm_model_close_hangs_up(provider: ScriptedProvider) -> None:
    provider.enqueue(Text("y" * 100, chunk_chars=1, delay=0.02))
    model = LitellmModel(model="openai/x", base_url=provider.base_url, api_key="test")
    # An async generator (typed as a bare AsyncIterator), closed as the Runner closes it.
    events: Any = model.stream_response(
        system_instructions="be brief",
        input="hi",
        model_settings=ModelSettings(),
        tools=[],
        output_schema=None,
        handoffs=[],
        tracing=ModelTracing.DISABLED,
        previous_response_id=None,
        conversation_id=None,
        prompt=None,
    )
    count = 0
    async for _ in events:
        count += 1
        if count == 10:
            break
    await events.aclose()

    record = await provider.wait_for_stream_end_async(timeout=2)
    assert record.client_disconnected
    assert record.chunks_sent < 30


def test_full_stream_wire_format_and_keep_alive(provider: ScriptedProvider) -> None:
    # A blocking client in the test thread: the provider has its own loop and thread.
    provider.enqueue(Text("abcdefgh", chunk_chars=4, usage=(7, 2)))
    with httpx.Client(base_url=provider.base_url) as client:
        with client.stream(
            "POST", "/chat/completions", json={"model": "m", "stream": True, "messages": USER}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = [line for line in response.iter_lines() if line]
        again = client.post("/chat/completions", json={"model": "m", "messages": USER})

    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["abcd", "efgh"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 9
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert again.json()["choices"][0]["message"]["content"] == "Echo: hi there"
    assert provider.wait_for_stream_end(0).finished


async def test_error_replies(provider: ScriptedProvider) -> None:
    provider.enqueue(Error(429, "slow down", retry_after=0.5), Error(503, "down"))
    async with httpx.AsyncClient(base_url=provider.base_url) as client:
        response = await client.post("/chat/completions", json={"model": "m", "messages": USER})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "0.5"
    assert response.json()["error"]["message"] == "slow down"

    with pytest.raises(ServiceUnavailableError) as raised:
        await litellm.acompletion(
            model="openai/x",
            api_base=provider.base_url,
            api_key="k",
            messages=USER,
            max_retries=0,
        )
    assert raised.value.status_code == 503
    assert "down" in str(raised.value)


async def test_malformed_stream_fails_the_client(provider: ScriptedProvider) -> None:
    provider.enqueue(Malformed())
    with pytest.raises(Exception, match="Unterminated string"):
        await _stream(provider)


async def test_hang_until_client_times_out(provider: ScriptedProvider) -> None:
    provider.enqueue(Hang())
    async with httpx.AsyncClient(base_url=provider.base_url, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/chat/completions", json={"model": "m", "messages": USER})
    record = await provider.wait_for_stream_end_async(timeout=2)
    assert record.client_disconnected
    assert record.chunks_sent == 0
