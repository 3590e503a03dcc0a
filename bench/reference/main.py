# ruff: noqa - the seed's code, kept as written (see the docstring)
"""The seeds' reference design, for benchmarks only (see docs/benchmarks.md).

Written from /work/shared/seeds/chatkit-backend-setup-skill.md: its `main.py` template,
its requirements (requirements.txt here), `ChatKitServer` + an in-memory `MemoryStore`
(the template's "[INSERT STORE IMPLEMENTATION]") + `LitellmModel` + the seed's id fix
in `respond()`. Only what stops it running was changed, each marked "BENCH:":
- the three "[INSERT ...]" placeholders are filled in (store, model, server);
- the model is configured from MODEL / MODEL_API_BASE / MODEL_API_KEY, so LiteLLM
  talks to the benchmark's scripted provider on 127.0.0.1;
- Agents SDK tracing and LiteLLM's cost-map download are switched off: both would
  reach the internet, which these machines cannot (and must not) do.
"""

# BENCH: before anything imports litellm or the Agents SDK: no network.
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

import uuid  # noqa: E402,F401 - as in the seed
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime, timezone  # noqa: E402,F401
from pathlib import Path  # noqa: E402
from typing import Any, AsyncIterator  # noqa: E402

from agents import Agent, Runner  # noqa: E402
from agents.extensions.models.litellm_model import LitellmModel  # noqa: E402
from chatkit.agents import AgentContext, ThreadItemConverter, stream_agent_response  # noqa: E402
from chatkit.server import ChatKitServer, StreamingResult  # noqa: E402
from chatkit.store import NotFoundError, Store  # noqa: E402
from chatkit.types import Page, ThreadItem, ThreadMetadata  # noqa: E402
from dotenv import load_dotenv  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.middleware.cors import CORSMiddleware  # noqa: E402
from fastapi.responses import Response, StreamingResponse  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402,F401

ROOT_DIR = Path(__file__).parent.parent
load_dotenv(ROOT_DIR / ".env")


# [INSERT STORE IMPLEMENTATION - use chatkit-store skill]
# BENCH: the chatkit-store skill is not among the seeds; this is the plain in-memory
# store the template's /debug/threads endpoint expects (`store._threads[id].items`).
@dataclass
class _ThreadState:
    thread: ThreadMetadata
    items: list[ThreadItem] = field(default_factory=list)


class MemoryStore(Store[dict]):
    def __init__(self) -> None:
        self._threads: dict[str, _ThreadState] = {}
        self._attachments: dict[str, Any] = {}

    async def load_thread(self, thread_id: str, context: dict) -> ThreadMetadata:
        state = self._threads.get(thread_id)
        if state is None:
            raise NotFoundError(f"Thread {thread_id} not found")
        return state.thread.model_copy(deep=True)

    async def save_thread(self, thread: ThreadMetadata, context: dict) -> None:
        state = self._threads.get(thread.id)
        if state is None:
            self._threads[thread.id] = _ThreadState(thread.model_copy(deep=True))
        else:
            state.thread = thread.model_copy(deep=True)

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: dict
    ) -> Page[ThreadMetadata]:
        threads = sorted(
            (s.thread for s in self._threads.values()),
            key=lambda t: t.created_at,
            reverse=order == "desc",
        )
        return _page(threads, after, limit)

    async def delete_thread(self, thread_id: str, context: dict) -> None:
        self._threads.pop(thread_id, None)

    async def load_thread_items(
        self, thread_id: str, after: str | None, limit: int, order: str, context: dict
    ) -> Page[ThreadItem]:
        state = self._threads.get(thread_id)
        items = [] if state is None else list(state.items)
        items.sort(key=lambda i: i.created_at, reverse=order == "desc")
        return _page(items, after, limit)

    async def add_thread_item(self, thread_id: str, item: ThreadItem, context: dict) -> None:
        state = self._threads.get(thread_id)
        if state is None:
            raise NotFoundError(f"Thread {thread_id} not found")
        for index, existing in enumerate(state.items):
            if existing.id == item.id:
                state.items[index] = item.model_copy(deep=True)
                return
        state.items.append(item.model_copy(deep=True))

    async def save_item(self, thread_id: str, item: ThreadItem, context: dict) -> None:
        await self.add_thread_item(thread_id, item, context)

    async def load_item(self, thread_id: str, item_id: str, context: dict) -> ThreadItem:
        state = self._threads.get(thread_id)
        for item in state.items if state else []:
            if item.id == item_id:
                return item.model_copy(deep=True)
        raise NotFoundError(f"Item {item_id} not found")

    async def delete_thread_item(self, thread_id: str, item_id: str, context: dict) -> None:
        state = self._threads.get(thread_id)
        if state is not None:
            state.items = [i for i in state.items if i.id != item_id]

    async def save_attachment(self, attachment: Any, context: dict) -> None:
        self._attachments[attachment.id] = attachment

    async def load_attachment(self, attachment_id: str, context: dict) -> Any:
        if attachment_id not in self._attachments:
            raise NotFoundError(f"Attachment {attachment_id} not found")
        return self._attachments[attachment_id]

    async def delete_attachment(self, attachment_id: str, context: dict) -> None:
        self._attachments.pop(attachment_id, None)


def _page(rows: list[Any], after: str | None, limit: int) -> Page[Any]:
    start = 0
    if after:
        for index, row in enumerate(rows):
            if row.id == after:
                start = index + 1
                break
    data = rows[start : start + limit]
    has_more = start + limit < len(rows)
    return Page(data=data, has_more=has_more, after=data[-1].id if has_more and data else None)


# [INSERT MODEL CONFIGURATION - based on provider param]
# BENCH: the seed's OpenAI block, with the base URL of an OpenAI-compatible server.
model = LitellmModel(
    model=os.getenv("MODEL", "openai/gpt-4o"),
    base_url=os.getenv("MODEL_API_BASE"),
    api_key=os.getenv("MODEL_API_KEY") or os.getenv("OPENAI_API_KEY"),
)

agent = Agent(
    name="Assistant",
    instructions="You are a helpful assistant.",
    model=model,
)


# BENCH: as written, every follow-up turn fails: the default converter replays earlier
# assistant turns as `output_text` parts, which the Agents SDK's Chat Completions
# converter (LitellmModel) rejects ("UserError: Unknown content"; CHATKIT_NOTES.md,
# history conversion). The smallest fix, so conversations can be measured: plain text.
class _PlainTextConverter(ThreadItemConverter):
    async def assistant_message_to_input(self, item):
        text = "".join(part.text for part in item.content)
        return {"type": "message", "role": "assistant", "content": text}


# [INSERT SERVER IMPLEMENTATION - use chatkit-agent-memory skill]
class ChatKitServerImpl(ChatKitServer[dict]):
    def __init__(self, store: Store[dict]) -> None:
        super().__init__(store)
        self.converter = _PlainTextConverter()  # BENCH: was ThreadItemConverter()

    async def respond(self, thread, input, context):
        from chatkit.types import (
            AssistantMessageItem,
            ThreadItemAddedEvent,  # noqa: F401
            ThreadItemDoneEvent,  # noqa: F401
            ThreadItemUpdatedEvent,  # noqa: F401
        )

        # ... setup code ...
        agent_context = AgentContext(thread=thread, store=self.store, request_context=context)
        page = await self.store.load_thread_items(thread.id, None, 30, "desc", context)
        agent_input = await self.converter.to_agent_input(list(reversed(page.data)))
        result = Runner.run_streamed(agent, agent_input, context=agent_context)

        # Track ID mappings to ensure unique IDs
        id_mapping: dict[str, str] = {}

        async for event in stream_agent_response(agent_context, result):
            # Fix potential ID collisions from LiteLLM/Gemini
            if event.type == "thread.item.added":
                if isinstance(event.item, AssistantMessageItem):
                    old_id = event.item.id
                    if old_id not in id_mapping:
                        new_id = self.store.generate_item_id("message", thread, context)
                        id_mapping[old_id] = new_id
                    event.item.id = id_mapping[old_id]
            elif event.type == "thread.item.done":
                if isinstance(event.item, AssistantMessageItem):
                    old_id = event.item.id
                    if old_id in id_mapping:
                        event.item.id = id_mapping[old_id]
            elif event.type == "thread.item.updated":
                if event.item_id in id_mapping:
                    event.item_id = id_mapping[event.item_id]
            yield event


app = FastAPI(title="ChatKit Server")
app.add_middleware(
    CORSMiddleware,
    allow_origins=["*"],
    allow_credentials=True,
    allow_methods=["*"],
    allow_headers=["*"],
)
store = MemoryStore()
server = ChatKitServerImpl(store)


@app.post("/chatkit")
async def chatkit_endpoint(request: Request):
    result = await server.process(await request.body(), {})
    if isinstance(result, StreamingResult):
        return StreamingResponse(result, media_type="text/event-stream")
    return Response(content=result.json, media_type="application/json")


@app.get("/health")
async def health():
    return {"status": "ok"}


# Debug endpoint to inspect stored items
@app.get("/debug/threads")
async def debug_threads():
    result = {}
    for thread_id, state in store._threads.items():
        items = []
        for item in state.items:
            item_data = {"id": item.id, "type": type(item).__name__}
            if hasattr(item, "content") and item.content:
                content_parts = []
                for part in item.content:
                    if hasattr(part, "text"):
                        content_parts.append(part.text)
                item_data["content"] = content_parts
            items.append(item_data)
        result[thread_id] = {"items": items, "count": len(items)}
    return result


if __name__ == "__main__":
    import uvicorn

    # BENCH: loopback only (the seed binds 0.0.0.0).
    uvicorn.run(app, host="127.0.0.1", port=int(os.getenv("PORT", "8000")))
