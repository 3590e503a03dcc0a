"""A real server on 127.0.0.1 for tests, and a small ChatKit client to talk to it."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import jwt
import uvicorn
from fastapi import FastAPI

from chatkit_backend.app import create_app
from chatkit_backend.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def live_server(settings: Settings, app: FastAPI | None = None) -> Iterator[str]:
    """Run the app (by default `create_app(settings)`) under uvicorn in a thread (own event
    loop); yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app or create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def user_input(text: str) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {},
    }


def parse_sse(body: str) -> list[dict[str, Any]]:
    """The JSON events of an SSE body (comments such as pings are skipped)."""
    events = []
    for frame in body.split("\n\n"):
        for line in frame.splitlines():
            if line.startswith("data: ") and line[6:] != "[DONE]":
                events.append(json.loads(line[6:]))
    return events


def assistant_text(events: list[dict[str, Any]]) -> str:
    done = [
        e["item"]
        for e in events
        if e["type"] == "thread.item.done" and e["item"]["type"] == "assistant_message"
    ]
    return "".join(part["text"] for item in done for part in item["content"])


class ChatKitClient:
    """Speaks the ChatKit wire protocol to a live server."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers or {}, timeout=30)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def post(self, body: dict[str, Any] | bytes) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.http.post(
            "/chatkit", content=content, headers={"content-type": "application/json"}
        )

    async def call(self, type: str, **params: Any) -> Any:
        """A JSON request; raises on a non-2xx answer."""
        response = await self.post({"type": type, "params": params})
        response.raise_for_status()
        assert response.headers["content-type"].startswith("application/json")
        return response.json()

    async def stream(self, type: str, **params: Any) -> list[dict[str, Any]]:
        """A streaming request, read to the end."""
        response = await self.post({"type": type, "params": params})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.text)

    async def create_thread(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        events = await self.stream("threads.create", input=user_input(text))
        assert events[0]["type"] == "thread.created"
        return events[0]["thread"]["id"], events

    async def send(self, thread_id: str, text: str) -> list[dict[str, Any]]:
        return await self.stream(
            "threads.add_user_message", thread_id=thread_id, input=user_input(text)
        )

    async def items(self, thread_id: str, **params: Any) -> list[dict[str, Any]]:
        page = await self.call("items.list", thread_id=thread_id, limit=100, order="asc", **params)
        items: list[dict[str, Any]] = page["data"]
        return items


async def start_stream(
    client: ChatKitClient, body: dict[str, Any]
) -> tuple[asyncio.Task[str], str]:
    """Start a streaming request and read it in a task; return the task and the thread id,
    once the first text delta has arrived (so a run is really in progress)."""
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def read() -> str:
        text = ""
        async with client.http.stream("POST", "/chatkit", json=body) as response:
            assert response.status_code == 200, await response.aread()
            async for chunk in response.aiter_text():
                text += chunk
                if not ready.done() and "thread.item.updated" in text:
                    found = re.search(r'"thread_id":"(thr_[0-9a-f]+)"', text)
                    assert found
                    ready.set_result(found.group(1))
        return text

    task = asyncio.create_task(read())
    return task, await asyncio.wait_for(ready, 20)


def bearer_for(user: str, secret: str) -> dict[str, str]:
    """The Authorization header of `user`, signed in with a token made with `secret`."""
    token = jwt.encode({"sub": user, "exp": int(time.time()) + 600}, secret, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def signed_in(url: str, secret: str, *users: str) -> AsyncIterator[tuple[ChatKitClient, ...]]:
    """A ChatKit client per user, each with their own token; closed on the way out."""
    clients = tuple(ChatKitClient(url, bearer_for(user, secret)) for user in users)
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()
