"""The ChatKitServer: answers with the agent, records feedback, stops runs for real."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio
from agents import Agent, FunctionTool, MaxTurnsExceeded, Model, ModelSettings, RunConfig, Runner
from chatkit.actions import Action
from chatkit.agents import stream_agent_response
from chatkit.errors import CustomStreamError
from chatkit.server import ChatKitServer, NonStreamingResult, StreamingResult
from chatkit.types import (
    AssistantMessageContentPartTextDelta,
    AudioInput,
    ChatKitReq,
    FeedbackKind,
    SyncCustomActionResponse,
    ThreadItem,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
    TranscriptionResult,
    UserMessageItem,
    UserMessageTextContent,
    WidgetItem,
    is_streaming_req,
)
from pydantic import BaseModel

from ..agent.catalogue import ModelCatalogue
from ..agent.context_window import history_token_budget
from ..agent.kit import AgentKit
from ..agent.models import ModelChoice, ModelClient, key_rejected
from ..agent.setup import AgentSetup
from ..agent.titles import generate_title
from ..attachments.transcription import Transcriber
from ..config import Settings
from ..context import RequestContext
from ..logs import bind
from ..runs.accounting import RunAccounting, RunOutcome
from .events import with_fresh_ids
from .history import HistoryConverter
from .history_budget import fit_history
from .preflight import REMEMBERED_MODEL, TurnChoices
from .store import SQLStore, answer_next_read_from
from .wire_times import with_utc_times

if TYPE_CHECKING:
    from ..agent.mcp_tools import McpTools
    from ..attachments.service import Attachments

log = logging.getLogger(__name__)

MAX_AGENT_TURNS = 10

MAX_TURNS_MESSAGE = (
    f"The assistant took too many steps ({MAX_AGENT_TURNS}) without finishing its answer. "
    "Your message is saved; please try again, perhaps asking for less at once."
)


def is_text_delta(event: ThreadStreamEvent) -> bool:
    return isinstance(event, ThreadItemUpdatedEvent) and isinstance(
        event.update, AssistantMessageContentPartTextDelta
    )


def user_text(item: UserMessageItem) -> str:
    return "".join(part.text for part in item.content if isinstance(part, UserMessageTextContent))


def provider_error_message(exc: BaseException, choice: ModelChoice | None = None) -> str:
    """What the user sees when the model fails: no internals, never a key or a URL.

    A refused key names the setting to check (never its value): retrying cannot help.
    """
    status = getattr(exc, "status_code", None)
    if status == 401 and choice is not None:
        return key_rejected(choice)
    if status == 429:
        return "The model provider is rate-limiting requests. Please try again in a moment."
    if isinstance(exc, TimeoutError):
        return "The model took too long to answer. Please try again."
    detail = f" (HTTP {status})" if isinstance(status, int) else ""
    return f"The model provider failed to answer{detail}. Your message is saved; please retry."


def forced_tool(message: UserMessageItem | None, agent: Agent[Any]) -> str | None:
    """The tool the user forced for this turn, if the agent has it now.

    Preflight refuses a new message naming another tool; a retried one may name a tool
    gone since (an MCP server that is down), and is then answered unforced.
    """
    choice = message.inference_options.tool_choice if message is not None else None
    if choice is None or choice.id not in {tool.name for tool in agent.tools}:
        return None
    return choice.id


class ChatServer(ChatKitServer[RequestContext]):
    """ChatKit protocol on the SQL store, answered by the configured agent."""

    def __init__(
        self,
        store: SQLStore,
        catalogue: ModelCatalogue,
        clients: dict[str, ModelClient],
        kit: AgentKit,
        accounting: RunAccounting,
        *,
        settings: Settings,
        mcp: McpTools | None = None,
        attachments: Attachments | None = None,
    ) -> None:
        super().__init__(store, attachments)
        self.attachments = attachments
        self.sql_store = store
        self.catalogue = catalogue
        self.clients = clients
        self.kit = kit
        self.accounting = accounting
        self.settings = settings
        self.history_items = settings.history_items
        self.model_timeout = settings.model_timeout_seconds
        self.converter = HistoryConverter(
            attachments, settings.attachment_text_chars, settings.model_image_bytes_budget
        )
        self.transcriber = Transcriber(settings) if settings.transcription_model else None
        # The most audio input.transcribe takes (None: transcription is off).
        self.audio_max_bytes = settings.attachment_max_bytes if self.transcriber else None
        # Built once per model: a turn only picks one.
        self.agent_models: dict[str, Model] = {
            model_id: client.agent_model(kit.planner) for model_id, client in clients.items()
        }
        # Each model's history budget follows its own context window (or HISTORY_TOKENS).
        self.history_budgets = {
            model_id: history_token_budget(settings, client.choice)
            for model_id, client in clients.items()
        }
        self.agent_name = kit.build_agent(AgentSetup.for_check(settings)).name
        self.mcp = mcp
        self._run_configs: dict[tuple[str, str | None], RunConfig] = {}

    def run_config(self, model_id: str, tool_choice: str | None) -> RunConfig:
        """The run's configuration, one per model and forced tool, shared by their turns.

        The Agents SDK reads a RunConfig and never changes it, and making one costs it a
        `typing.get_type_hints` of the whole class: 1-2 ms a turn (docs/benchmarks.md).
        The keys are bounded: the configured models times the agent's tools and none.
        """
        key = (model_id, tool_choice)
        config = self._run_configs.get(key)
        if config is None:
            config = self._run_configs[key] = RunConfig(
                model=self.agent_models[model_id],
                # Without include_usage the provider's usage chunk is dropped from streamed
                # replies. A forced tool is forced once: the SDK resets it after a call.
                model_settings=ModelSettings(include_usage=True, tool_choice=tool_choice),
            )
        return config

    def configured_tools(self) -> list[FunctionTool]:
        """The tools this server adds to the agent's own now (MCP servers that are ready)."""
        return self.mcp.function_tools(self.kit.tool_names()) if self.mcp is not None else []

    @property
    def turn_choices(self) -> TurnChoices:
        """What a new message may choose now: a model, and one of the agent's tools."""
        tools = self.kit.tool_names() | {tool.name for tool in self.configured_tools()}
        return TurnChoices(self.catalogue, frozenset(tools))

    async def process_parsed(
        self, request: ChatKitReq, context: RequestContext
    ) -> StreamingResult | NonStreamingResult:
        """`process()` for a request the route has parsed and checked already.

        The SDK's `process()` parses the body again, with a pydantic TypeAdapter it
        builds anew on every call: together about 5 ms a request (docs/benchmarks.md).
        """
        if is_streaming_req(request):
            return StreamingResult(self._process_streaming(request, context))
        return NonStreamingResult(await self._process_non_streaming(request, context))

    def _serialize(self, obj: BaseModel) -> bytes:
        # Every JSON answer and streamed event of the SDK is written here: the one place
        # its naive local times can be given their UTC offset (chat/wire_times.py).
        return super()._serialize(with_utc_times(obj))

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        if thread.status.type != "active":
            raise CustomStreamError(f"This thread is {thread.status.type}.", allow_retry=False)

        # Preflight wrote the turn's model into the message; a retried message may name
        # one no longer offered, and then the thread's (or the default) answers.
        requested = input_user_message.inference_options.model if input_user_message else None
        model_id = self.catalogue.for_turn(requested, thread.metadata.get(REMEMBERED_MODEL))
        client = self.clients[model_id]
        bind(model=model_id)

        # The user item being answered is already stored: it is the newest of these.
        # HISTORY_ITEMS bounds how many are read, the model's token budget what is sent.
        page = await self.store.load_thread_items(
            thread.id, None, self.history_items, "desc", context
        )
        model_input = fit_history(
            await self.converter.to_agent_input(list(reversed(page.data))),
            self.history_budgets[model_id],
        )

        agent_context = self.kit.new_context(thread, self.store, context)
        setup = AgentSetup(
            user_id=context.user_id,
            thread_id=thread.id,
            settings=self.settings,
            tools=tuple(self.configured_tools()),
        )
        agent = self.kit.build_agent(setup)
        result = Runner.run_streamed(
            agent,
            model_input,
            context=agent_context,
            max_turns=MAX_AGENT_TURNS,
            run_config=self.run_config(model_id, forced_tool(input_user_message, agent)),
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        first_token: float | None = None
        outcome = "error"
        # The whole run has a deadline. Cancelling the run (not this task) ends its event
        # stream cleanly, so the deadline turns into an error event instead of a hang.
        timed_out = False

        def on_deadline() -> None:
            nonlocal timed_out
            timed_out = True
            result.cancel()

        title_task: asyncio.Task[str] | None = None
        if thread.title is None and input_user_message is not None:
            # Runs beside the reply so a real model's title costs no extra latency. Started
            # only here, where the try below awaits or cancels it: history that cannot be
            # read or a factory that raises must not leave a model request running alone.
            # A message of attachments alone is titled after their names.
            first = user_text(input_user_message) or ", ".join(
                a.name for a in input_user_message.attachments
            )
            title_task = asyncio.create_task(generate_title(client, first))
        deadline = loop.call_later(self.model_timeout, on_deadline)
        try:
            events = stream_agent_response(agent_context, result)
            # The SDK starts by reading the thread's newest items: they are in `page`.
            with answer_next_read_from(thread.id, page):
                async for event in with_fresh_ids(events, self._new_item_id(thread, context)):
                    if first_token is None and is_text_delta(event):
                        first_token = loop.time() - started
                    yield event
            if timed_out:
                outcome = "timeout"
                raise CustomStreamError(provider_error_message(TimeoutError()), allow_retry=True)
            async for event in self.kit.after_run(agent_context):
                yield event
            outcome = "completed"
            client.key_rejected = False
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        except CustomStreamError:
            raise
        except MaxTurnsExceeded as exc:
            # Not the provider's fault, and nothing for the operator to fix: the model
            # kept calling tools. Saying the provider failed would send users astray.
            log.warning("agent run stopped after %d turns", MAX_AGENT_TURNS)
            raise CustomStreamError(MAX_TURNS_MESSAGE, allow_retry=True) from exc
        except Exception as exc:
            log.exception("agent run failed", extra={"thread_id": thread.id})
            if getattr(exc, "status_code", None) == 401:
                client.key_rejected = True
            message = provider_error_message(exc, client.choice)
            raise CustomStreamError(message, allow_retry=True) from exc
        finally:
            deadline.cancel()
            # Without this the run keeps reading the model stream (and running tools)
            # after a stop or disconnect: the SDK does not cancel it for us.
            if not result.is_complete:
                result.cancel()
            if title_task is not None and not title_task.done():
                title_task.cancel()
            usage = result.context_wrapper.usage
            with anyio.CancelScope(shield=True):
                await self.accounting.finished(
                    context,
                    RunOutcome(
                        thread_id=thread.id,
                        model=model_id,
                        outcome=outcome,
                        seconds=loop.time() - started,
                        first_token_seconds=first_token,
                        input_tokens=usage.input_tokens,
                        output_tokens=usage.output_tokens,
                    ),
                )

        # Saved with the title when both change (the SDK saves a changed thread once).
        thread.metadata[REMEMBERED_MODEL] = model_id
        if title_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                thread.title = await title_task

    def _new_item_id(self, thread: ThreadMetadata, context: RequestContext) -> Callable[[str], str]:
        def new_id(kind: str) -> str:
            return self.store.generate_item_id(kind, thread, context)  # type: ignore[arg-type]

        return new_id

    async def handle_stream_cancelled(
        self,
        thread: ThreadMetadata,
        pending_items: list[ThreadItem],
        context: RequestContext,
    ) -> None:
        # Saving the partial reply must survive the cancellation that got us here.
        with anyio.CancelScope(shield=True):
            await super().handle_stream_cancelled(thread, pending_items, context)

    def action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        return self.kit.action(thread, action, sender, context)

    async def sync_action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: RequestContext,
    ) -> SyncCustomActionResponse:
        return await self.kit.sync_action(thread, action, sender, context)

    async def transcribe(
        self, audio_input: AudioInput, context: RequestContext
    ) -> TranscriptionResult:
        # Preflight has checked that transcription is on and the audio is acceptable.
        assert self.transcriber is not None
        text = await self.transcriber.transcribe(audio_input.data, audio_input.mime_type)
        return TranscriptionResult(text=text)

    async def add_feedback(
        self,
        thread_id: str,
        item_ids: list[str],
        feedback: FeedbackKind,
        context: RequestContext,
    ) -> None:
        await self.sql_store.save_feedback(thread_id, item_ids, feedback, context)
