"""A scripted OpenAI-compatible Chat Completions server that tests run in place of a provider."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self

Body = dict[str, Any]
Predicate = Callable[[Body], bool]

_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Text:
    """A text answer. Streamed as: role delta, content pieces, finish "stop", usage, [DONE].

    `delay` is slept between consecutive stream events, `initial_delay` after the response
    headers and before the first event (or before a non-streaming answer).
    `usage` is (prompt_tokens, completion_tokens); default (10, number of content pieces).
    """

    text: str
    chunk_chars: int = 4
    delay: float = 0.0
    initial_delay: float = 0.0
    usage: tuple[int, int] | None = None


@dataclass(frozen=True)
class Call:
    """One function call of a `ToolCalls` reply; `arguments` as a str is sent verbatim."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    call_id: str | None = None


@dataclass(frozen=True)
class ToolCalls:
    """Function calls (optionally after some text), finish_reason "tool_calls".

    `calls` holds `Call`s or (name, arguments) tuples; other fields as in `Text`.
    """

    calls: Sequence[Call | tuple[str, Mapping[str, Any]]]
    text: str = ""
    chunk_chars: int = 4
    delay: float = 0.0
    initial_delay: float = 0.0
    usage: tuple[int, int] | None = None


@dataclass(frozen=True)
class Error:
    """An HTTP error with an OpenAI-style `{"error": {...}}` body."""

    status: int = 500
    message: str = "boom"
    retry_after: float | None = None


@dataclass(frozen=True)
class Malformed:
    """A 200 answer whose body is not valid JSON (an SSE data line, if streaming), then close."""


@dataclass(frozen=True)
class Hang:
    """Never answer; keep the connection until the client gives up (recorded as a stream)."""


Reply = Text | ToolCalls | Error | Malformed | Hang


@dataclass
class StreamRecord:
    """One streamed response (or `Hang`) as the server saw it; times are `time.monotonic()`.

    A "chunk" is one SSE `data:` event, counting the role delta, finish, usage and [DONE].
    """

    request_index: int
    reply: Reply
    chunks_planned: int
    chunks_sent: int = 0
    client_disconnected: bool = False
    finished: bool = False
    started_at: float = field(default_factory=time.monotonic)
    disconnected_at: float | None = None
    finished_at: float | None = None

    @property
    def ended(self) -> bool:
        return self.finished or self.client_disconnected


class _BadRequest(Exception):
    pass


class _Connection:
    """A client connection with a push-back buffer, so that watching for EOF while a
    response is written never loses the bytes of a pipelined next request."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = bytearray()
        self.gone = asyncio.Event()

    async def _fill(self) -> bool:
        try:
            data = await self.reader.read(65536)
        except ConnectionError:
            data = b""
        if not data:
            self.gone.set()
            return False
        self.buffer += data
        return True

    async def read_until(self, separator: bytes) -> bytes | None:
        """Bytes up to and including `separator`; None if the client closed first."""
        while (at := self.buffer.find(separator)) < 0:
            if len(self.buffer) > _MAX_HEAD:
                raise _BadRequest("header or chunk line too long")
            if not await self._fill():
                return None
        end = at + len(separator)
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data

    async def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not await self._fill():
                raise _BadRequest("body cut short")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def wait_for_eof(self) -> None:
        # While we answer, the client has sent its whole request; the only thing that can
        # still arrive is EOF (it hung up: the signal we are after) or a pipelined request.
        while await self._fill():
            pass

    async def pause(self, seconds: float) -> bool:
        """Sleep, but wake as soon as the client goes; True if it has gone."""
        if seconds > 0 and not self.gone.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gone.wait(), seconds)
        return self.gone.is_set()

    async def send(self, data: bytes) -> bool:
        """Write and drain; False if the client has gone."""
        if self.gone.is_set() or self.writer.is_closing():
            return False
        try:
            self.writer.write(data)
            await self.writer.drain()
        except ConnectionError:
            self.gone.set()
            return False
        return not self.gone.is_set()


class ScriptedProvider:
    """OpenAI-compatible `/v1/chat/completions` on 127.0.0.1 in its own thread and event loop,
    so it serves callers in the pytest loop, another thread or a subprocess alike."""

    def __init__(self) -> None:
        self.requests: list[Body] = []
        self.streams: list[StreamRecord] = []
        # /audio/transcriptions: each request's raw (multipart) body, and the answer.
        self.transcriptions: list[bytes] = []
        self.transcript = "scripted transcript"
        self._queue: deque[Reply] = deque()
        self._routes: list[tuple[Predicate, Reply]] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="scripted-provider", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = self._loop = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("ScriptedProvider is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    # -- scripting ---------------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> None:
        """Replies for the next chat.completions requests, first in first out."""
        with self._changed:
            self._queue.extend(replies)

    def route(self, predicate: Predicate, reply: Reply) -> None:
        """Answer every request with predicate(body) true with `reply`, leaving the queue alone."""
        with self._changed:
            self._routes.append((predicate, reply))

    def wait_for_stream_end(self, index: int = -1, timeout: float = 5.0) -> StreamRecord:
        """Block until stream `index` finished or lost its client; it may not have started yet.

        A negative index is fixed once enough streams exist (so -1 with none yet means the
        first one), so a later stream never replaces the one being waited for.
        """
        deadline = time.monotonic() + timeout
        position: int | None = None
        with self._changed:
            while True:
                position = self._resolve(index, position)
                if position is not None and self.streams[position].ended:
                    return self.streams[position]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"stream {index} did not end within {timeout}s")
                self._changed.wait(remaining)

    async def wait_for_stream_end_async(
        self,
        index: int = -1,
        timeout: float = 5.0,  # noqa: ASYNC109 - same signature as the blocking variant
    ) -> StreamRecord:
        """`wait_for_stream_end` without blocking the caller's event loop."""
        # Polling rather than a thread keeps this cancellable like any other await.
        deadline = time.monotonic() + timeout
        position: int | None = None
        while True:
            with self._changed:
                position = self._resolve(index, position)
                if position is not None and self.streams[position].ended:
                    return self.streams[position]
            if time.monotonic() >= deadline:
                raise TimeoutError(f"stream {index} did not end within {timeout}s")
            await asyncio.sleep(0.005)

    def _resolve(self, index: int, position: int | None) -> int | None:
        count = len(self.streams)
        if position is not None:
            return position
        if index >= 0:
            return index if count > index else None
        return count + index if count >= -index else None

    # -- server thread -----------------------------------------------------------------

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        try:
            server = loop.run_until_complete(
                asyncio.start_server(self._serve_connection, "127.0.0.1", 0)
            )
        except BaseException as exc:
            failure.append(exc)
            loop.close()
            ready.set()
            return
        self._loop = loop
        self._port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown(server))
            loop.close()

    async def _shutdown(self, server: asyncio.Server) -> None:
        server.close()
        # Every task of this loop, not only the registered ones: a connection accepted just
        # before stop() may not have registered itself yet.
        others = asyncio.all_tasks() - {asyncio.current_task()}
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await server.wait_closed()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = _Connection(reader, writer)
        try:
            while await self._serve_request(conn):
                pass
        except _BadRequest as exc:
            await conn.send(_json_response(400, _error_body(400, str(exc)), keep_alive=False))
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            # Only `stop()` cancels us. Ending normally matters on 3.11, whose StreamReaderProtocol
            # calls task.exception() on a finished task and logs the CancelledError it raises.
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_request(self, conn: _Connection) -> bool:
        """Answer one request; True if the connection stays open for another."""
        head = await conn.read_until(b"\r\n\r\n")
        if head is None:
            return False  # an idle keep-alive connection closed by the client
        lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, value in (line.split(":", 1) for line in lines[1:] if line)
            }
        except ValueError as exc:
            raise _BadRequest("malformed request head") from exc
        if headers.get("expect", "").lower() == "100-continue":
            await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        raw = await self._read_body(conn, headers)
        keep_alive = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()

        path = target.split("?", 1)[0].rstrip("/")
        if method == "POST" and path.endswith("/audio/transcriptions"):
            with self._changed:
                self.transcriptions.append(raw)
            body = {"text": self.transcript}
            return await conn.send(_json_response(200, body, keep_alive)) and keep_alive
        if method != "POST" or not path.endswith("/chat/completions"):
            status = 404 if method in ("GET", "POST") else 405
            body = _error_body(status, f"{method} {path} is not served here")
            return await conn.send(_json_response(status, body, keep_alive)) and keep_alive
        try:
            request = json.loads(raw)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            body = _error_body(400, "request body is not a JSON object")
            return await conn.send(_json_response(400, body, keep_alive)) and keep_alive

        with self._changed:
            self.requests.append(request)
            index = len(self.requests) - 1
            routes = list(self._routes)
        reply = self._choose(request, routes)
        return await self._answer(conn, index, request, reply, keep_alive)

    async def _read_body(self, conn: _Connection, headers: Mapping[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size_line = await conn.read_until(b"\r\n")
                if size_line is None:
                    raise _BadRequest("chunked body cut short")
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError as exc:
                    raise _BadRequest("bad chunk size") from exc
                if size == 0:
                    break
                parts.append(await conn.read_exactly(size))
                await conn.read_exactly(2)
            while await conn.read_until(b"\r\n") not in (b"\r\n", None):
                pass  # trailers
            return b"".join(parts)
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError as exc:
            raise _BadRequest("bad content-length") from exc
        return await conn.read_exactly(length)

    def _choose(self, request: Body, routes: list[tuple[Predicate, Reply]]) -> Reply:
        # Predicates run outside the lock so that one may call back into the provider.
        for predicate, reply in routes:
            try:
                matched = predicate(request)
            except Exception as exc:  # a broken predicate should fail the test, not the server
                return Error(500, f"scripted provider: route predicate raised {exc!r}")
            if matched:
                return reply
        with self._changed:
            if self._queue:
                return self._queue.popleft()
        return Text("Echo: " + _last_user_text(request))

    async def _answer(
        self, conn: _Connection, index: int, request: Body, reply: Reply, keep_alive: bool
    ) -> bool:
        streaming = bool(request.get("stream"))
        model = str(request.get("model", "scripted"))
        if isinstance(reply, Error):
            extra = {}
            if reply.retry_after is not None:
                extra["retry-after"] = f"{reply.retry_after:g}"
                extra["retry-after-ms"] = f"{reply.retry_after * 1000:.0f}"
            body = _error_body(reply.status, reply.message)
            sent = await conn.send(_json_response(reply.status, body, keep_alive, extra))
            return sent and keep_alive
        if isinstance(reply, Hang):
            record = self._new_stream(index, reply, 0)
            await self._watched(conn, record, conn.gone.wait())
            return False
        if isinstance(reply, Malformed):
            return await self._malformed(conn, index, reply, streaming)
        if not streaming:
            body = _completion(reply, model)
            return await self._watched(conn, None, self._reply_whole(conn, reply, body, keep_alive))
        events = _stream_events(reply, model)
        record = self._new_stream(index, reply, len(events))
        return await self._watched(conn, record, self._stream(conn, record, events, reply))

    async def _reply_whole(
        self, conn: _Connection, reply: Text | ToolCalls, body: Body, keep_alive: bool
    ) -> bool:
        if await conn.pause(reply.initial_delay):
            return False
        return await conn.send(_json_response(200, body, keep_alive)) and keep_alive

    async def _watched(
        self, conn: _Connection, record: StreamRecord | None, answer: Awaitable[bool]
    ) -> bool:
        """Run `answer` while watching the socket, so a hang-up is seen between chunks."""
        watcher = asyncio.create_task(self._watch(conn, record))
        try:
            result = await answer
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if conn.gone.is_set():
            if record is not None:
                self._mark(record, disconnected=True)
            return False
        return bool(result)

    async def _watch(self, conn: _Connection, record: StreamRecord | None) -> None:
        await conn.wait_for_eof()
        # Marked right here so disconnected_at is the moment the FIN arrived.
        if record is not None:
            self._mark(record, disconnected=True)

    async def _stream(
        self, conn: _Connection, record: StreamRecord, events: list[bytes], reply: Text | ToolCalls
    ) -> bool:
        if not await conn.send(_stream_head()):
            return False
        for number, event in enumerate(events):
            if await conn.pause(reply.initial_delay if number == 0 else reply.delay):
                return False
            if not await conn.send(b"%x\r\n%s\r\n" % (len(event), event)):
                return False
            with self._changed:
                record.chunks_sent += 1
        if not await conn.send(b"0\r\n\r\n"):
            return False
        self._mark(record, disconnected=False)
        return True

    async def _malformed(
        self, conn: _Connection, index: int, reply: Malformed, streaming: bool
    ) -> bool:
        # Close-delimited on purpose: the client learns the body ended only from the close.
        if not streaming:
            await conn.send(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b'connection: close\r\n\r\n{"id": "chatcmpl-broken", "choices": ['
            )
            return False
        record = self._new_stream(index, reply, 1)
        head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"cache-control: no-cache\r\nconnection: close\r\n\r\n"
        )
        if await conn.send(head) and await conn.send(b'data: {"choices": [{"delta": {"con\n\n'):
            with self._changed:
                record.chunks_sent = 1
            self._mark(record, disconnected=False)
        return False

    def _new_stream(self, index: int, reply: Reply, planned: int) -> StreamRecord:
        record = StreamRecord(request_index=index, reply=reply, chunks_planned=planned)
        with self._changed:
            self.streams.append(record)
            self._changed.notify_all()
        return record

    def _mark(self, record: StreamRecord, *, disconnected: bool) -> None:
        with self._changed:
            if record.ended:
                return
            if disconnected:
                record.client_disconnected = True
                record.disconnected_at = time.monotonic()
            else:
                record.finished = True
                record.finished_at = time.monotonic()
            self._changed.notify_all()


# -- wire format -------------------------------------------------------------------------


def _error_body(status: int, message: str) -> Body:
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _json_response(
    status: int, body: Body, keep_alive: bool, extra: Mapping[str, str] | None = None
) -> bytes:
    data = json.dumps(body).encode()
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    headers = {
        "content-type": "application/json",
        "content-length": str(len(data)),
        "connection": "keep-alive" if keep_alive else "close",
        "x-request-id": f"req_{uuid.uuid4().hex}",
        **(extra or {}),
    }
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode("latin-1") + data


def _stream_head() -> bytes:
    return (
        "HTTP/1.1 200 OK\r\n"
        "content-type: text/event-stream; charset=utf-8\r\n"
        "transfer-encoding: chunked\r\n"
        "cache-control: no-cache\r\n"
        "connection: keep-alive\r\n"
        f"x-request-id: req_{uuid.uuid4().hex}\r\n\r\n"
    ).encode("latin-1")


def _last_user_text(request: Body) -> str:
    for message in reversed(request.get("messages") or []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                str(part.get("text", ""))
                for part in content
                if isinstance(part, dict) and part.get("type") in ("text", "input_text")
            )
    return ""


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[at : at + size] for at in range(0, len(text), size)]


def _calls(reply: ToolCalls) -> list[tuple[str, str, str]]:
    """(call_id, name, arguments JSON) per call, with fresh ids for every answer."""
    out = []
    for call in reply.calls:
        if isinstance(call, tuple):
            call = Call(call[0], call[1])
        arguments = (
            call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
        )
        out.append((call.call_id or f"call_{uuid.uuid4().hex[:24]}", call.name, arguments))
    return out


def _usage(usage: tuple[int, int]) -> Body:
    prompt, completion = usage
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _envelope(model: str, kind: str) -> Body:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_scripted",
    }


def _stream_events(reply: Text | ToolCalls, model: str) -> list[bytes]:
    base = _envelope(model, "chat.completion.chunk")
    deltas: list[Body] = []
    text_pieces = _pieces(reply.text, reply.chunk_chars)
    if isinstance(reply, Text) or reply.text:
        deltas.append({"role": "assistant", "content": ""})
    deltas.extend({"content": piece} for piece in text_pieces)
    generated = len(text_pieces)
    if isinstance(reply, ToolCalls):
        for position, (call_id, name, arguments) in enumerate(_calls(reply)):
            head: Body = {
                "index": position,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            if deltas:
                deltas.append({"tool_calls": [head]})
            else:
                deltas.append({"role": "assistant", "content": None, "tool_calls": [head]})
            for piece in _pieces(arguments, reply.chunk_chars):
                deltas.append(
                    {"tool_calls": [{"index": position, "function": {"arguments": piece}}]}
                )
                generated += 1
    finish = "tool_calls" if isinstance(reply, ToolCalls) else "stop"
    choices: list[Body] = [
        {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None} for delta in deltas
    ]
    choices.append({"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish})
    payloads: list[Body] = [{**base, "choices": [choice]} for choice in choices]
    payloads.append({**base, "choices": [], "usage": _usage(reply.usage or (10, generated))})
    events = [b"data: " + json.dumps(payload).encode() + b"\n\n" for payload in payloads]
    return [*events, b"data: [DONE]\n\n"]


def _completion(reply: Text | ToolCalls, model: str) -> Body:
    message: Body = {"role": "assistant", "content": reply.text, "refusal": None}
    finish = "stop"
    generated = len(_pieces(reply.text, reply.chunk_chars))
    if isinstance(reply, ToolCalls):
        calls = _calls(reply)
        message["content"] = reply.text or None
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            for call_id, name, args in calls
        ]
        finish = "tool_calls"
        generated += sum(len(_pieces(args, reply.chunk_chars)) for _, _, args in calls)
    return {
        **_envelope(model, "chat.completion"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage(reply.usage or (10, generated)),
    }
