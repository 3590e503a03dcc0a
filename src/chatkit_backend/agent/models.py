"""MODEL -> how the agent reaches its model: the OpenAI client, LiteLLM, or offline.

`openai/<name>` (OpenAI itself, or any OpenAI-compatible server such as Ollama or vLLM
with MODEL_API_BASE) goes through the Agents SDK's own Chat Completions model on one
shared `AsyncOpenAI` client. Every other id (`gemini/...`, `anthropic/...`,
`ollama_chat/...`), and any id written as `litellm/<id>`, goes through LiteLLM.
LiteLLM wraps every streamed chunk in its own objects and bookkeeping: for the
providers that already speak the OpenAI protocol that costs more CPU per reply than
the rest of the server together (docs/benchmarks.md), and it buys nothing there.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..config import Settings

if TYPE_CHECKING:
    from agents import Model
    from openai import AsyncOpenAI

    from .offline import Planner

OFFLINE = "offline"
OPENAI_PREFIX = "openai/"
LITELLM_PREFIX = "litellm/"
# Retries of a request the provider refused (429, 5xx, connection errors) before any
# of its stream arrived: the OpenAI client's own backoff, as LiteLLM uses it too.
PROVIDER_RETRIES = 2
# The OpenAI client insists on a key; local servers (Ollama, vLLM) ignore it.
NO_KEY = "not-set"

log = logging.getLogger(__name__)

Route = Literal["offline", "openai", "litellm"]


@dataclass(frozen=True)
class ModelChoice:
    """The model in use, and why it was chosen (logged at start)."""

    name: str
    reason: str
    api_base: str | None = None
    api_key: str | None = None

    @property
    def is_offline(self) -> bool:
        return self.name == OFFLINE

    @property
    def route(self) -> Route:
        if self.is_offline:
            return "offline"
        return "openai" if self.name.startswith(OPENAI_PREFIX) else "litellm"

    @property
    def model_id(self) -> str:
        """The id the provider (OpenAI client) or LiteLLM is given."""
        if self.route == "openai":
            return self.name.removeprefix(OPENAI_PREFIX)
        return self.name.removeprefix(LITELLM_PREFIX)


def _provider_key(settings: Settings, model: str) -> str | None:
    if settings.model_api_key:
        return settings.model_api_key
    provider = model.removeprefix(LITELLM_PREFIX).split("/", 1)[0]
    return {
        "gemini": settings.gemini_api_key,
        "openai": settings.openai_api_key,
        "anthropic": settings.anthropic_api_key,
    }.get(provider)


def choose_model(settings: Settings) -> ModelChoice:
    """Pick the model: MODEL if set, else the first provider with a key, else offline."""
    if settings.model:
        if settings.model == OFFLINE:
            return ModelChoice(OFFLINE, "MODEL=offline")
        return ModelChoice(
            settings.model,
            "MODEL is set",
            settings.model_api_base,
            _provider_key(settings, settings.model),
        )
    candidates = [
        (settings.gemini_api_key, f"gemini/{settings.gemini_model}", "GEMINI_API_KEY is set"),
        (settings.openai_api_key, "openai/gpt-4o-mini", "OPENAI_API_KEY is set"),
        (settings.anthropic_api_key, "anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY is set"),
    ]
    for key, name, reason in candidates:
        if key:
            return ModelChoice(name, reason, settings.model_api_base, key)
    return ModelChoice(OFFLINE, "no MODEL and no provider API key")


def prepare_litellm() -> None:
    """Keep LiteLLM off the network at import (it fetches a cost map otherwise)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


class ModelClient:
    """The connection to the chosen model, shared by the agent and title requests.

    Built once per process: the OpenAI client keeps its HTTP connections open between
    turns. LiteLLM (about 3 s to import) is imported only when the route needs it.
    """

    def __init__(self, choice: ModelChoice) -> None:
        self.choice = choice
        self._openai: AsyncOpenAI | None = None
        if choice.route == "openai":
            from .openai_client import ChunkValidatingOpenAI

            self._openai = ChunkValidatingOpenAI(
                base_url=choice.api_base,
                api_key=choice.api_key or NO_KEY,
                max_retries=PROVIDER_RETRIES,
            )
        elif choice.route == "litellm":
            prepare_litellm()

    def agent_model(self, planner: Planner) -> Model:
        """The Agents SDK model the agent runs on."""
        if self.choice.route == "offline":
            from .offline import OfflineModel

            return OfflineModel(planner)
        if self._openai is not None:
            from agents import OpenAIChatCompletionsModel

            return OpenAIChatCompletionsModel(
                model=self.choice.model_id, openai_client=self._openai
            )
        from agents.extensions.models.litellm_model import LitellmModel

        return LitellmModel(
            model=self.choice.model_id, base_url=self.choice.api_base, api_key=self.choice.api_key
        )

    async def complete(
        self, messages: list[dict[str, str]], *, max_tokens: int, request_timeout: float
    ) -> str:
        """One short, non-streamed completion (titles); raises on any failure."""
        if self.choice.route == "offline":
            raise RuntimeError("the offline model does not answer free-form requests")
        if self._openai is not None:
            # The client's plain `post` (retries, timeout and errors as usual), answered
            # as a dict: `chat.completions.create` walks the body against its TypedDicts
            # and builds models of the answer, more CPU than the rest of the request.
            answer: dict[str, Any] = await self._openai.post(
                "/chat/completions",
                cast_to=dict,
                body={
                    "model": self.choice.model_id,
                    "messages": messages,
                    "max_tokens": max_tokens,
                },
                options={"timeout": request_timeout},
            )
            return str(answer["choices"][0]["message"].get("content") or "")
        import litellm

        response = await litellm.acompletion(
            model=self.choice.model_id,
            api_base=self.choice.api_base,
            api_key=self.choice.api_key,
            messages=messages,
            max_tokens=max_tokens,
            timeout=request_timeout,
        )
        content = response.choices[0].message.content
        return str(content or "")

    async def aclose(self) -> None:
        if self._openai is not None:
            await self._openai.close()
        elif self.choice.route == "litellm":
            await close_litellm_clients()


async def close_litellm_clients() -> None:
    """Close LiteLLM's HTTP clients of the running event loop, and forget them.

    LiteLLM keeps one client per provider and event loop, open until the process exits:
    a server whose loop ends sooner (in a test, on a reload) would leave its provider
    connections open, and a later loop given the same id would be handed a dead client.
    """
    import litellm

    cache = getattr(litellm, "in_memory_llm_clients_cache", None)
    if cache is None:
        return
    # LiteLLM's cache key ends with the id of the loop the client belongs to.
    suffix = f"-{id(asyncio.get_running_loop())}"
    for key in [k for k in list(cache.cache_dict) if str(k).endswith(suffix)]:
        client = cache.cache_dict.get(key)
        cache.delete_cache(key)
        close = getattr(client, "aclose", None) or getattr(client, "close", None)
        if close is None:
            continue
        try:
            result = close()
            if inspect.isawaitable(result):
                await result
        except Exception:
            # Shutting down: a client that fails to close must not stop the rest.
            log.warning("could not close a LiteLLM client", exc_info=True)
