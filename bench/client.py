# ruff: noqa: ASYNC109 - hand-run tool: plain timeouts, blocking calls
"""A minimal HTTP/1.1 client on asyncio streams, for timing SSE responses precisely.

Lighter than httpx on a 2-core machine where the client shares the CPU with the
servers it measures, and it exposes the moments that matter: request sent, first
body byte, last body byte, and an abrupt hang-up in the middle of a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"


# ChatKit's event for a piece of the assistant's reply text.
TEXT_DELTA = b"assistant_message.content_part.text_delta"


class HttpError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    started: float  # perf_counter when the request was written
    first_byte: float | None  # ... when the first body byte arrived
    ended: float  # ... when the body was complete (or the client hung up)
    hung_up: bool = False
    first_text: float | None = None  # ... when the first assistant text delta arrived
    _events: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def ttfb(self) -> float:
        return (self.first_byte or self.ended) - self.started

    @property
    def ttft(self) -> float | None:
        """To the first piece of the assistant's text: what a user waits to see a reply."""
        return None if self.first_text is None else self.first_text - self.started

    @property
    def total(self) -> float:
        return self.ended - self.started

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[dict[str, Any]]:
        if self._events is None:
            self._events = sse_events(self.body)
        return self._events


def sse_events(body: bytes) -> list[dict[str, Any]]:
    out = []
    for frame in body.split(b"\n\n"):
        for line in frame.split(b"\n"):
            if line.startswith(b"data: ") and line[6:] != b"[DONE]":
                try:
                    out.append(json.loads(line[6:]))
                except ValueError:
                    out.append({"type": "<unparsable>"})
    return out


def stream_ok(response: Response) -> bool:
    """A streamed turn that ended with a finished assistant message and no error event."""
    if response.status != 200 or response.hung_up:
        return False
    events = response.events()
    if any(e.get("type") == "error" for e in events):
        return False
    return any(
        e.get("type") == "thread.item.done" and e.get("item", {}).get("type") == "assistant_message"
        for e in events
    )


class Connection:
    """One keep-alive connection; reopened transparently when the server closed it."""

    def __init__(self, port: int, host: str = HOST, headers: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = port
        # Sent with every request (e.g. Authorization).
        self.extra_head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        timeout: float = 60.0,
        hang_up_when: Callable[[bytes], bool] | None = None,
    ) -> Response:
        """Send a request and read the whole response (within `timeout` seconds).

        `hang_up_when(body_so_far)` returning True closes the connection at once, in the
        middle of the body, as a browser's Stop button does.
        """
        try:
            return await asyncio.wait_for(
                self._request(method, path, body, hang_up_when), timeout=timeout
            )
        except BaseException:
            await self.close()
            raise

    async def _request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        hang_up_when: Callable[[bytes], bool] | None,
    ) -> Response:
        if self.writer is None or self.writer.is_closing():
            await self._open()
        assert self.reader is not None and self.writer is not None
        payload = body or b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            f"Accept: text/event-stream, application/json\r\n{self.extra_head}\r\n"
        ).encode("latin-1")
        started = time.perf_counter()
        self.writer.write(head + payload)
        await self.writer.drain()
        reader = self.reader
        try:
            raw_head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise HttpError("connection closed before the response head") from exc
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        chunks: list[bytes] = []
        first_byte: float | None = None
        first_text: float | None = None
        hung_up = False
        if "chunked" in headers.get("transfer-encoding", "").lower():
            seen = bytearray()
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                data = await reader.readexactly(size + 2)
                if first_byte is None:
                    first_byte = time.perf_counter()
                # (The tail of the previous chunk too: the marker may straddle two.)
                tail = chunks[-1][-64:] if chunks else b""
                if first_text is None and TEXT_DELTA in tail + data:
                    first_text = time.perf_counter()
                chunks.append(data[:-2])
                if hang_up_when is not None:
                    seen += data[:-2]
                    if hang_up_when(bytes(seen)):
                        hung_up = True
                        break
        else:
            length = int(headers.get("content-length", "0"))
            data = await reader.readexactly(length) if length else b""
            first_byte = time.perf_counter()
            chunks.append(data)
        ended = time.perf_counter()
        if hung_up or headers.get("connection", "").lower() == "close":
            await self.close()
        body_bytes = b"".join(chunks)
        return Response(
            status, headers, body_bytes, started, first_byte, ended, hung_up, first_text
        )

    async def post_json(self, path: str, payload: Any, **kwargs: Any) -> Response:
        return await self.request("POST", path, json.dumps(payload).encode(), **kwargs)


def user_input(text: str) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {},
    }


def create_body(text: str = "Hello, benchmark") -> bytes:
    return json.dumps({"type": "threads.create", "params": {"input": user_input(text)}}).encode()


async def wait_ready(port: int, path: str = "/health", timeout: float = 60.0) -> float:
    """Poll `path` every 10 ms until it answers 200; return when (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        conn = Connection(port)
        try:
            response = await conn.request("GET", path, timeout=2)
            if response.status == 200:
                return response.ended
        except (OSError, HttpError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            await conn.close()
        await asyncio.sleep(0.01)
    raise TimeoutError(f"127.0.0.1:{port}{path} not ready within {timeout}s")
