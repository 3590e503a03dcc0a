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
from urllib.parse import urlsplit

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

# The cloud providers whose keys are settings: the variable each key comes from, and the
# provider's own API host (MODEL_API_BASE anywhere else, a proxy or a local server, may
# need no key at all).
CLOUD_PROVIDERS = {
    "gemini": ("GEMINI_API_KEY", "generativelanguage.googleapis.com"),
    "openai": ("OPENAI_API_KEY", "api.openai.com"),
    "anthropic": ("ANTHROPIC_API_KEY", "api.anthropic.com"),
}
MODEL_API_KEY = "MODEL_API_KEY"


@dataclass(frozen=True)
class ModelChoice:
    """The model in use, and why it was chosen (logged at start)."""

    name: str
    reason: str
    api_base: str | None = None
    api_key: str | None = None
    # The setting the key comes from (or would): what to check when the provider says 401.
    key_variable: str | None = None

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


def _provider(model: str) -> str:
    return model.removeprefix(LITELLM_PREFIX).split("/", 1)[0]


def provider_key(settings: Settings, model: str) -> tuple[str | None, str]:
    """The key for `model` and the variable it comes from (or should)."""
    if settings.model_api_key:
        return settings.model_api_key, MODEL_API_KEY
    provider = _provider(model)
    if provider == "gemini" and not settings.gemini_api_key and settings.google_api_key:
        return settings.google_api_key, "GOOGLE_API_KEY"
    keys = {
        "gemini": settings.gemini_api_key,
        "openai": settings.openai_api_key,
        "anthropic": settings.anthropic_api_key,
    }
    if provider not in keys:
        # LiteLLM may find the provider's own variable itself; ours is the one we know.
        return None, MODEL_API_KEY
    return keys[provider], CLOUD_PROVIDERS[provider][0]


def choose_model(settings: Settings) -> ModelChoice:
    """Pick the model: MODEL if set, else the first provider with a key, else offline."""
    if settings.model:
        if settings.model == OFFLINE:
            return ModelChoice(OFFLINE, "MODEL=offline")
        key, variable = provider_key(settings, settings.model)
        return ModelChoice(settings.model, "MODEL is set", settings.model_api_base, key, variable)
    candidates = [
        (settings.gemini_api_key, f"gemini/{settings.gemini_model}", "GEMINI_API_KEY"),
        (settings.openai_api_key, "openai/gpt-4o-mini", "OPENAI_API_KEY"),
        (settings.anthropic_api_key, "anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
    ]
    for key, name, variable in candidates:
        if key:
            return ModelChoice(name, f"{variable} is set", settings.model_api_base, key, variable)
    return ModelChoice(OFFLINE, "no MODEL and no provider API key")


def missing_key(choice: ModelChoice) -> str | None:
    """Why `choice` cannot answer for want of a key, naming the variable; None if it may.

    Only when that is certain: a known cloud provider, no key for it, and no MODEL_API_BASE
    pointing somewhere else. Served anyway, every message would fail with HTTP 401.
    """
    if choice.is_offline or choice.api_key:
        return None
    known = CLOUD_PROVIDERS.get(_provider(choice.name))
    if known is None:
        return None
    variable, host = known
    if choice.api_base and urlsplit(choice.api_base).hostname != host:
        return None
    return f"MODEL={choice.name} needs an API key: set {variable} (or {MODEL_API_KEY})"


def key_rejected(choice: ModelChoice) -> str:
    """What to tell users and operators when the provider refuses the key (HTTP 401)."""
    variable = choice.key_variable or MODEL_API_KEY
    return f"The model provider refused the API key (HTTP 401): check {variable}."


def prepare_litellm() -> None:
    """Keep LiteLLM off the network: call this before anything imports it.

    Importing LiteLLM fetches its model cost map from the internet unless this variable
    tells it to read the copy it ships. An operator's own setting is left alone.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


class ModelClient:
    """The connection to the chosen model, shared by the agent and title requests.

    Built once per process: the OpenAI client keeps its HTTP connections open between
    turns. LiteLLM (about 3 s to import) is imported only when the route needs it.
    """

    def __init__(self, choice: ModelChoice) -> None:
        self.choice = choice
        # Set when the provider refused the key, cleared by the next answered turn: a
        # wrong key does not fix itself, and /health/ready reports it.
        self.key_rejected = False
        self._openai: AsyncOpenAI | None = None
        if choice.route != "offline":
            from . import request_transform

            request_transform.install()
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
