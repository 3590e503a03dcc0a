"""The seed project's web frontend, as far as it talks to a backend, reproduced for contract tests.

The seed project is github.com/maneeshanif/todo-spec-driven (a Next.js app). Its code is
not copied here: each rule below is its behaviour, restated, with the file and function
it comes from (paths under `frontend/`). What it does in the browser that does not
touch the wire (React state, styling) is left out; what decides whether a callback
fires, with which values, or whether a request fails, is kept exactly, including its
quirks (e.g. the event name is forgotten at the end of every network read).
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from typing import Any

import httpx


class _Undefined:
    """JavaScript's `undefined`: what reading a missing property gives (not `null`)."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED: Any = _Undefined()


def prop(data: Any, name: str) -> Any:
    """`data.name` in JavaScript, for a parsed JSON value."""
    if isinstance(data, dict):
        return data.get(name, UNDEFINED)
    return UNDEFINED  # a property of a number, string or array that JSON would not give


def js_trim(text: str) -> str:
    # String.prototype.trim: whitespace and line terminators (Python's strip() is the same set
    # for these purposes: spaces, tabs, \r, \n, NBSP, BOM, Unicode spaces).
    return text.strip(
        " \t\n\r\x0b\x0c\u00a0\ufeff\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
        "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
    )


@dataclass
class Recorded:
    """The callbacks a stream fired (lib/sse/client.ts StreamCallbacks), in order, and
    what its client logged as a warning (unknown events, unparsable data)."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    requests: int = 0

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [call[1:] for call in self.calls if call[0] == name]

    @property
    def names(self) -> list[str]:
        return [call[0] for call in self.calls]


# lib/sse/client.ts -------------------------------------------------------------------------


def handle_sse_event(event_type: str, data: Any, out: Recorded) -> None:
    """lib/sse/client.ts handleSSEEvent: the event name picks the callback, and these
    fields of `data` are its arguments (a missing one is `undefined`)."""
    match event_type:
        case "thinking":
            out.calls.append(("onThinking", prop(data, "content"), prop(data, "agent")))
        case "token":
            out.calls.append(("onToken", prop(data, "content")))
        case "tool_call":
            tool_call = {
                "id": prop(data, "call_id"),
                "tool": prop(data, "tool"),
                "arguments": prop(data, "args"),
            }
            out.calls.append(("onToolCall", tool_call))
        case "tool_result":
            out.calls.append(("onToolResult", prop(data, "call_id"), prop(data, "output")))
        case "agent_updated":
            out.calls.append(("onAgentUpdated", prop(data, "agent"), prop(data, "content")))
        case "done":
            out.calls.append(("onDone", prop(data, "conversation_id"), prop(data, "message_id")))
        case "error":
            # callbacks.onError?.(new Error(event.message))
            out.calls.append(("onError", _error_message(prop(data, "message"))))
        case (
            "agent_start"
            | "agent_end"
            | "llm_start"
            | "llm_end"
            | "mcp_request"
            | "mcp_response"
            | "handoff_call"
            | "handoff"
            | "reasoning"
        ):
            # Verbose and multi-agent events: only sent by its old backend on request.
            out.calls.append((event_type, data))
        case _:
            out.warnings.append(f"[SSE] Unknown event type: {event_type}")


def _error_message(message: Any) -> str:
    # new Error(undefined).message is "", new Error(x).message is String(x).
    if message is UNDEFINED:
        return ""
    return message if isinstance(message, str) else json.dumps(message)


def process_reads(reads: list[bytes], out: Recorded) -> None:
    """lib/sse/client.ts processSSEStreamWithTimeout, over the network reads as they came."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # TextDecoder, stream
    buffer = ""
    for value in reads:
        buffer += decoder.decode(value)
        lines = buffer.split("\n")
        # "Keep the last incomplete line in buffer"
        buffer = lines.pop() or ""
        # `let currentEventType = ''` is declared inside the read loop: an `event:` line
        # and its `data:` line only go together when they arrive in the same read.
        current_event_type = ""
        for line in lines:
            trimmed = js_trim(line)
            if trimmed == "":
                current_event_type = ""
                continue
            if trimmed.startswith("event:"):
                current_event_type = js_trim(trimmed[6:])
            elif trimmed.startswith("data:"):
                data_str = js_trim(trimmed[5:])
                try:
                    data = json.loads(data_str)
                except ValueError:
                    out.warnings.append(f"[SSE] Failed to parse event data: {data_str}")
                    continue
                if data is None:
                    # `event.content` of null throws inside the try: logged as unparsable.
                    out.warnings.append(f"[SSE] Failed to parse event data: {data_str}")
                    continue
                handle_sse_event(current_event_type, data, out)


async def stream_chat_message(
    http: httpx.AsyncClient, token: str | None, conversation_id: Any, message: str
) -> Recorded:
    """lib/sse/client.ts streamChatMessage -> executeStreamWithRetry, one attempt.

    It posts to `${NEXT_PUBLIC_API_URL}/api/chat/stream` with `Authorization: Bearer
    ${token}`, which reads "Bearer null" without a token, and the body
    JSON.stringify({conversation_id, message}) (a null id is kept). A 4xx is reported
    as onError(`Stream request failed: ${status} - ${text}`) and not retried; any other
    failure would be retried after onThinking("Connection lost. ...", "System"): that is
    recorded as `retry`, which a test must never see.
    """
    out = Recorded()
    body = json.dumps({"conversation_id": conversation_id, "message": message})
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {_js(token)}"}
    out.requests += 1
    async with http.stream("POST", "/api/chat/stream", content=body, headers=headers) as response:
        if not response.is_success:
            text = (await response.aread()).decode()
            if 400 <= response.status_code < 500:
                out.calls.append(
                    ("onError", f"Stream request failed: {response.status_code} - {text}")
                )
            else:
                out.calls.append(("retry", response.status_code, text))
            return out
        reads = [chunk async for chunk in response.aiter_raw()]
    process_reads(reads, out)
    return out


def _js(value: Any) -> str:
    """`${value}` in a template literal."""
    return "null" if value is None else str(value)


# lib/api/client.ts and lib/api/chat.ts ---------------------------------------------------------


class AxiosError(Exception):
    """What its axios instance rejects with for a status outside 2xx."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"Request failed with status code {response.status_code}")
        self.response = response


class ChatApi:
    """lib/api/chat.ts chatApi over lib/api/client.ts apiClient (axios).

    apiClient: baseURL NEXT_PUBLIC_API_URL, `Content-Type: application/json`, and its
    request interceptor adds `Authorization: Bearer <token>` only when localStorage has
    a `bearer_token`. Axios rejects any status outside 2xx (its 401 interceptor only
    logs and rejects too) and hands back `response.data`: the parsed JSON body.
    """

    def __init__(self, http: httpx.AsyncClient, token: str | None) -> None:
        self.http = http
        self.token = token

    async def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = await self.http.request(method, url, headers=headers, **kwargs)
        if not response.is_success:
            raise AxiosError(response)
        # Axios parses a JSON body; an empty one (204) is "".
        return response.json() if response.content else ""

    async def send_message(self, request: dict[str, Any]) -> Any:
        return await self._request("POST", "/api/chat", content=json.dumps(request))

    async def get_conversations(self, page: int = 1, page_size: int = 20) -> Any:
        return await self._request(
            "GET", "/api/chat/conversations", params={"page": page, "page_size": page_size}
        )

    async def get_conversation(self, conversation_id: Any) -> Any:
        return await self._request("GET", f"/api/chat/conversations/{_js(conversation_id)}")

    async def update_conversation(self, conversation_id: Any, update: dict[str, Any]) -> Any:
        return await self._request(
            "PUT", f"/api/chat/conversations/{_js(conversation_id)}", content=json.dumps(update)
        )

    async def delete_conversation(self, conversation_id: Any) -> None:
        await self._request("DELETE", f"/api/chat/conversations/{_js(conversation_id)}")

    async def get_most_recent_conversation(self) -> Any:
        conversations = (await self.get_conversations(1, 1))["conversations"]
        return conversations[0] if conversations else None


# stores/conversation-store.ts (the sidebar's state) ------------------------------------------


@dataclass
class ConversationStore:
    """stores/conversation-store.ts: the parts that read the API's answers.

    Each action catches the API's rejection and sets `error` to a fixed text, as it does.
    """

    api: ChatApi
    conversations: list[dict[str, Any]] = field(default_factory=list)
    current: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    async def fetch_conversations(self) -> None:
        try:
            self.conversations = (await self.api.get_conversations())["conversations"]
        except AxiosError:
            self.error = "Failed to load conversations"

    async def select_conversation(self, conversation_id: Any) -> None:
        try:
            conversation = await self.api.get_conversation(conversation_id)
        except AxiosError:
            self.error = "Failed to load conversation"
            return
        self.current = conversation
        self.messages = conversation.get("messages") or []

    async def rename_conversation(self, conversation_id: Any, title: str) -> None:
        try:
            updated = await self.api.update_conversation(conversation_id, {"title": title})
        except AxiosError:
            self.error = "Failed to rename conversation"
            return
        # conversations.map((c) => c.id === id ? {...c, title: updated.title} : c)
        self.conversations = [
            {**c, "title": updated["title"]} if c["id"] == conversation_id else c
            for c in self.conversations
        ]
        if self.current is not None and self.current["id"] == conversation_id:
            self.current = {**self.current, "title": updated["title"]}

    async def delete_conversation(self, conversation_id: Any) -> None:
        try:
            await self.api.delete_conversation(conversation_id)
        except AxiosError:
            self.error = "Failed to delete conversation"
            return
        self.conversations = [c for c in self.conversations if c["id"] != conversation_id]
        if self.current is not None and self.current["id"] == conversation_id:
            self.current, self.messages = None, []


# app/api/chatkit/route.ts (the Next.js proxy of its ChatKit page) ------------------------------


async def chatkit_proxy(
    http: httpx.AsyncClient, token: str, search: str, body: bytes
) -> tuple[int, str, str]:
    """app/api/chatkit/route.ts POST: forwards the body to
    `${NEXT_PUBLIC_API_URL}/api/chatkit${url.search}` with the bearer token and
    `Accept: text/event-stream, application/json`. A non-OK answer becomes
    `{"error": <text>}` with the same status; a `text/event-stream` answer is passed
    through as a stream, anything else as JSON text. Returns (status, kind, text)."""
    response = await http.post(
        f"/api/chatkit{search}",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "Accept": "text/event-stream, application/json",
        },
    )
    if not response.is_success:
        return response.status_code, "error", json.dumps({"error": response.text})
    kind = "stream" if "text/event-stream" in response.headers.get("content-type", "") else "json"
    return response.status_code, kind, response.text
