"""The OpenAI client the `openai/<name>` route runs on, with a fast path for stream chunks.

The client turns every streamed chunk into a `ChatCompletionChunk` with `construct_type`,
a pure-Python walk of the model's annotations: about 70 us a chunk, a tenth of this
server's CPU per reply (docs/benchmarks.md). pydantic-core's validator builds the same
object in about 3 us. A chunk it refuses (a provider's own finish_reason, a field of an
unexpected type) goes the client's lenient way, so nothing the client would accept is
lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk

if TYPE_CHECKING:
    import httpx2


class ChunkValidatingOpenAI(AsyncOpenAI):
    def _process_response_data(
        self, *, data: object, cast_to: type[Any], response: httpx2.Response
    ) -> Any:
        if cast_to is ChatCompletionChunk and isinstance(data, dict):
            try:
                return ChatCompletionChunk.model_validate(data)
            except pydantic.ValidationError:
                pass  # the client's own, lenient construction below
        return super()._process_response_data(data=data, cast_to=cast_to, response=response)
