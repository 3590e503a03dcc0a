"""The fast path in front of the openai client's request transform (agent/request_transform.py).

It is only right while no Chat Completions request type carries a transform annotation,
and while it answers exactly what the client's own transform would: both are checked
here against the installed client, with bodies built the way the Agents SDK builds them.
"""

from __future__ import annotations

import typing
from typing import Any, get_args, get_origin

import pytest
from openai._models import BaseModel as OpenAIModel
from openai._utils import PropertyInfo, async_maybe_transform
from openai.types.chat import completion_create_params
from typing_extensions import get_type_hints, is_typeddict

from chatkit_backend.agent import request_transform
from chatkit_backend.agent.request_transform import is_plain_json

STREAMING = completion_create_params.CompletionCreateParamsStreaming


def _annotations_with_transforms(root: object, visited: set[str] | None = None) -> list[str]:
    """Every place under `root`'s annotations that asks the client to transform a value.

    `visited` collects the names of the TypedDicts walked through."""
    found: list[str] = []
    seen: set[int] = set()
    visited = set() if visited is None else visited

    def walk(annotation: object, where: str) -> None:
        if id(annotation) in seen:
            return
        seen.add(id(annotation))
        if get_origin(annotation) is typing.Annotated:
            base, *extras = get_args(annotation)
            found.extend(
                f"{where}: {extra!r}" for extra in extras if isinstance(extra, PropertyInfo)
            )
            walk(base, where)
            return
        if isinstance(annotation, type) and is_typeddict(annotation):
            visited.add(annotation.__name__)
            hints = get_type_hints(annotation, include_extras=True)
            for name, hint in hints.items():
                walk(hint, f"{annotation.__name__}.{name}")
            return
        for arg in get_args(annotation):
            walk(arg, where)

    walk(root, getattr(root, "__name__", str(root)))
    return found


def test_no_chat_completions_request_type_asks_for_a_transform() -> None:
    # If an openai upgrade adds an alias or a format to these types, the fast path would
    # send the untransformed value: this fails first, and the fast path must be revisited.
    visited: set[str] = set()
    for root in (
        completion_create_params.CompletionCreateParamsStreaming,
        completion_create_params.CompletionCreateParamsNonStreaming,
    ):
        assert _annotations_with_transforms(root, visited) == []
    # The walk reaches the nested types a turn sends: message parts, tool calls, tools.
    assert {
        "ChatCompletionContentPartImageParam",
        "ChatCompletionMessageFunctionToolCallParam",
        "ChatCompletionFunctionToolParam",
        "FunctionDefinition",
    } <= visited


class _Aliased(typing.TypedDict):
    card_id: typing.Annotated[str, PropertyInfo(alias="cardID")]


class _Outer(typing.TypedDict):
    cards: list[_Aliased]


def test_the_walk_finds_a_transform_annotation_where_there_is_one() -> None:
    assert _annotations_with_transforms(_Outer) == [
        "_Aliased.card_id: " + repr(PropertyInfo(alias="cardID"))
    ]


def _todo_tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": "Add a task.",
            "parameters": {
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "due": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
                    "priority": {"type": "string", "enum": ["low", "medium", "high"]},
                },
                "required": ["title", "due", "priority"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }


BODIES: list[dict[str, Any]] = [
    {
        "model": "gpt-4o-mini",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "You are a todo assistant."},
            {"role": "user", "content": "add bread"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add_task", "arguments": '{"title": "bread"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"id": 1}'},
            {"role": "assistant", "content": "Added."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {
                        "type": "file",
                        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,"},
                    },
                ],
            },
        ],
        "tools": [_todo_tool("add_task"), _todo_tool("update_task")],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "temperature": 0.2,
        "max_tokens": 100,
        "metadata": {"k": "v"},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True},
        },
    },
    {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
]


@pytest.mark.parametrize("body", BODIES)
async def test_the_fast_path_answers_what_the_client_transform_answers(
    body: dict[str, Any],
) -> None:
    from openai import NOT_GIVEN, omit

    request_transform.install()
    from openai.resources.chat.completions import completions

    fast = completions.async_maybe_transform
    assert getattr(fast, "plain_json_fast_path", False)
    # The client passes every parameter, the ones not given as NOT_GIVEN / omit.
    with_missing = {**body, "seed": NOT_GIVEN, "user": omit, "top_p": NOT_GIVEN}
    expected = await async_maybe_transform(with_missing, STREAMING)
    got = await fast(with_missing, STREAMING)
    assert got == expected
    assert "seed" not in got and "user" not in got


async def test_anything_but_plain_json_goes_the_client_way() -> None:
    request_transform.install()
    from openai.resources.chat.completions import completions

    class Part(OpenAIModel):
        type: str
        text: str

    body = {
        "model": "m",
        "stream": True,
        # A tuple and a model: the client turns them into a list and a dict.
        "messages": ({"role": "user", "content": [Part(type="text", text="hi")]},),
    }
    assert not is_plain_json(body)
    got = await completions.async_maybe_transform(body, STREAMING)
    assert got == {
        "model": "m",
        "stream": True,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


async def test_other_request_types_are_left_to_the_client() -> None:
    request_transform.install()
    from openai.resources.chat.completions import completions
    from openai.types.chat import completion_update_params

    sentinel = object()
    assert not is_plain_json({"metadata": sentinel})
    got = await completions.async_maybe_transform(
        {"metadata": {"a": "b"}}, completion_update_params.CompletionUpdateParams
    )
    assert got == {"metadata": {"a": "b"}}


def test_install_is_idempotent() -> None:
    from openai.resources.chat.completions import completions

    request_transform.install()
    first = completions.async_maybe_transform
    request_transform.install()
    assert completions.async_maybe_transform is first


def test_plain_json_rules() -> None:
    assert is_plain_json({"a": [1, 2.5, "x", True, None, {"b": []}]})
    assert not is_plain_json({"a": (1, 2)})
    assert not is_plain_json({1: "int key"})
    deep: Any = "leaf"
    for _ in range(100):
        deep = [deep]
    assert not is_plain_json(deep)  # past the depth limit: the client's transform decides
