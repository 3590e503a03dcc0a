"""The chat machinery, loaded after start-up: Agents SDK, ChatKit server, model client.

Importing the Agents SDK and the OpenAI client takes seconds (LiteLLM, for the models
routed through it, several more). Start-up does not wait for them: the lifespan only
starts loading them, in a worker thread, so `/health` answers within a second or two
while the event loop stays free. A chat request that arrives before the load is done
waits for it; it never fails for it. `/health/ready` answers 503 until then, so a
load balancer sends traffic only to warm instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from ..agent.catalogue import ModelCatalogue
from ..agent.models import key_rejected, prepare_litellm
from ..attachments.transcription_models import transcribes_through_litellm
from ..config import Settings
from ..errors import ServiceUnavailable
from .store import SQLStore

if TYPE_CHECKING:
    from ..agent.mcp_tools import McpTools
    from ..agent.models import ModelClient
    from ..attachments.service import Attachments
    from .server import ChatServer

log = logging.getLogger(__name__)

# What a chat turn needs; imported in the worker thread.
CHAT_MODULES = (
    "chatkit_backend.chat.server",
    "chatkit_backend.agent.registry",
    "chatkit_backend.agent.planner",
)
LITELLM_MODULES = ("litellm", "agents.extensions.models.litellm_model")


def _import(names: tuple[str, ...]) -> None:
    for name in names:
        importlib.import_module(name)


_heap_frozen = False


def _freeze_heap() -> None:
    """Take what the imports built out of the cyclic collector's sight, once a process.

    The SDKs leave a few hundred thousand long-lived objects behind; every full
    collection would walk them all again, which cost about 5 ms a turn at 50
    concurrent turns (docs/benchmarks.md). Collected first, so no garbage is frozen.
    """
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()


class ChatRuntime:
    """Loads the chat machinery once, in the background, and hands out the server."""

    def __init__(
        self,
        settings: Settings,
        catalogue: ModelCatalogue,
        engine: AsyncEngine,
        store: SQLStore,
        attachments: Attachments | None = None,
    ) -> None:
        self.attachments = attachments
        self.settings = settings
        self.catalogue = catalogue
        self.engine = engine
        self.store = store
        self._clients: dict[str, ModelClient] = {}
        self.mcp: McpTools | None = None
        self._loading: asyncio.Task[ChatServer] | None = None

    def start(self) -> None:
        """Begin loading now (called from the lifespan; returns at once)."""
        if self._loading is None:
            self._loading = asyncio.create_task(self._load(), name="chat-runtime-load")

    @property
    def ready(self) -> bool:
        task = self._loading
        return task is not None and task.done() and not task.cancelled() and not task.exception()

    @property
    def model_problem(self) -> str | None:
        """Why a loaded model cannot answer, when known (the provider refused the key)."""
        for client in self._clients.values():
            if client.key_rejected:
                return key_rejected(client.choice)
        return None

    def mcp_states(self) -> dict[str, dict[str, object]] | None:
        """Each MCP server's state (None without MCP_CONFIG, or before the load)."""
        return self.mcp.states() if self.mcp is not None else None

    async def server(self) -> ChatServer:
        """The ChatKit server, once loaded (503 if loading it failed)."""
        self.start()
        assert self._loading is not None
        try:
            # Shielded: a request that gives up must not cancel the load for everyone.
            return await asyncio.shield(self._loading)
        except Exception as exc:
            raise ServiceUnavailable(
                "The chat model could not be loaded; see the server log.", code="model_unavailable"
            ) from exc

    async def _load(self) -> ChatServer:
        litellm = any(entry.choice.route == "litellm" for entry in self.catalogue.entries)
        modules = CHAT_MODULES + (LITELLM_MODULES if litellm else ())
        if transcribes_through_litellm(self.settings) and not litellm:
            # Here rather than on the first input.transcribe, which would stall the loop.
            modules += ("litellm",)
        # Before the imports: LiteLLM reads it as it is imported (ModelClient comes later).
        prepare_litellm()
        try:
            await asyncio.to_thread(_import, modules)
            server = self._build()
            _freeze_heap()
            return server
        except Exception:
            log.exception("could not load the chat runtime")
            raise

    def _build(self) -> ChatServer:
        from agents import set_tracing_disabled

        from ..agent.models import ModelClient
        from ..agent.registry import make_kit
        from ..runs.accounting import RunAccounting
        from ..tasks.service import TaskService
        from .server import ChatServer

        set_tracing_disabled(not self.settings.agents_tracing)
        kit = make_kit(self.settings, TaskService(self.engine), self.store)
        self._clients = {e.id: ModelClient(e.choice) for e in self.catalogue.entries}
        if self.settings.mcp_config is not None:
            from ..agent.mcp_config import load_mcp_config
            from ..agent.mcp_tools import McpTools

            # Connecting goes on in the background: a slow or dead server delays nothing.
            self.mcp = McpTools(load_mcp_config(self.settings.mcp_config))
            self.mcp.start()
        return ChatServer(
            self.store,
            self.catalogue,
            self._clients,
            kit,
            RunAccounting(self.engine),
            settings=self.settings,
            mcp=self.mcp,
            attachments=self.attachments,
        )

    async def aclose(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            with contextlib.suppress(BaseException):
                await self._loading
        if self.mcp is not None:
            await self.mcp.stop()
        for client in self._clients.values():
            await client.aclose()
