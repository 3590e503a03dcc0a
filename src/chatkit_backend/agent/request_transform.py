"""A fast path for the openai client's request transform on `chat.completions.create`.

Before sending, the client walks the whole request body (every message, every tool
schema) against the annotations of its TypedDicts, to rename aliased keys and format
dates, files and models. No Chat Completions request type has such an annotation (a test
checks the installed client), so for a body of plain JSON values the walk returns what
it was given, at about 4 ms of CPU for a todo turn's request: an eighth of this server's
CPU per turn on the OpenAI route (docs/benchmarks.md). The fast path returns a body of
plain JSON values as it is (leaving out the parameters not given, as the walk does) and
hands anything else (a pydantic model, a tuple, a date, a nested omitted value) to the
client's own transform, so nothing it would send differently is sent differently.

LiteLLM's OpenAI-compatible providers send through the same client code, so they share
the fast path; its own providers (Gemini, Anthropic) do not use this client.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

_JSON_SCALARS = (str, int, float, bool, type(None))
# Deeper than any real request; past it, the client's own transform decides.
_MAX_DEPTH = 64


def is_plain_json(value: object, depth: int = 0) -> bool:
    """True if `value` is made only of dicts with str keys, lists and JSON scalars."""
    if isinstance(value, _JSON_SCALARS):
        return True
    if depth >= _MAX_DEPTH:
        return False
    if type(value) is dict:
        return all(
            type(key) is str and is_plain_json(item, depth + 1) for key, item in value.items()
        )
    if type(value) is list:
        return all(is_plain_json(item, depth + 1) for item in value)
    return False


def _fast(
    original: Callable[[object, object], Awaitable[Any]],
    request_types: tuple[object, ...],
    is_given: Callable[[object], bool],
) -> Callable[[object, object], Awaitable[Any]]:
    @functools.wraps(original)
    async def transform(data: object, expected_type: object) -> Any:
        if expected_type in request_types and type(data) is dict:
            given = {key: value for key, value in data.items() if is_given(value)}
            if is_plain_json(given):
                return given
        return await original(data, expected_type)

    transform.__dict__["plain_json_fast_path"] = True
    return transform


def install() -> None:
    """Put the fast path in front of the client's transform for chat completions (once)."""
    from openai._utils import is_given
    from openai.resources.chat.completions import completions
    from openai.types.chat import completion_create_params

    current = completions.async_maybe_transform  # type: ignore[attr-defined]
    if getattr(current, "plain_json_fast_path", False):
        return
    request_types = (
        completion_create_params.CompletionCreateParamsStreaming,
        completion_create_params.CompletionCreateParamsNonStreaming,
        completion_create_params.CompletionCreateParams,
    )
    completions.async_maybe_transform = _fast(  # type: ignore[attr-defined,assignment]
        current, request_types, is_given
    )
