"""MCP servers from MCP_CONFIG: kept connected, their tools offered to every agent.

Each server lives in one task of its own (the MCP client's transports must be closed by
the task that opened them): it connects, lists the tools, refreshes that list now and
then, and reconnects with backoff whenever the server is lost. A server that is down
only makes its tools unavailable, with the reason logged and shown by /health/ready;
turns and start-up never fail for it.

Its tools reach the model as plain function tools that call the server, so they show in
the chat exactly like built-in tools (agent/tool_activity.py): workflow activity, client
effects, a hidden record replayed to the model on later turns, metrics by tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any, Literal

from agents import FunctionTool
from agents.mcp import MCPServer, MCPServerStdio, MCPServerStreamableHttp
from agents.tool_context import ToolContext
from mcp.shared.exceptions import MCPError

from .mcp_config import HttpServer, McpConfig, StdioServer
from .tool_activity import Output, failure, run_recorded

log = logging.getLogger(__name__)

# Bigger results are cut to this many characters before they reach the model.
MAX_RESULT_CHARS = 20_000
# How often a connected server's tool list is fetched again (which also notices a
# server that died quietly).
REFRESH_SECONDS = 60.0
RECONNECT_MIN_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 60.0
# The MCP session's own request timeout while connecting and listing.
SESSION_TIMEOUT_SECONDS = 10.0
# How long stop() lets a server's task close its connection before cancelling it (a hung
# server must not eat the shutdown grace that streams need).
STOP_GRACE_SECONDS = 2.0
# What OpenAI, Gemini and Anthropic accept as a function name; MCP allows more (dots, up
# to 128 characters), and one such name would make the provider refuse every turn.
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

State = Literal["starting", "ready", "down"]


def _reason(exc: BaseException) -> str:
    """A short reason for the log and /health/ready: the kind of failure, no payloads."""
    inner = exc
    while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
        inner = inner.exceptions[0]
    text = str(inner).splitlines()[0][:200] if str(inner) else ""
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


def _input_schema(tool: Any) -> dict[str, Any]:
    schema = getattr(tool, "input_schema", None) or getattr(tool, "inputSchema", None)
    return schema if isinstance(schema, dict) else {}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def result_text(result: Any) -> str:
    """An MCP tool result as the text the model reads, cut to MAX_RESULT_CHARS."""
    parts = []
    for block in getattr(result, "content", None) or []:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else json.dumps(block.model_dump(mode="json")))
    if not parts and getattr(result, "structured_content", None) is not None:
        parts.append(json.dumps(result.structured_content))
    text = "\n".join(parts)
    if len(text) > MAX_RESULT_CHARS:
        cut = len(text) - MAX_RESULT_CHARS
        text = text[:MAX_RESULT_CHARS] + f"\n[cut: {cut} more characters]"
    return text


class McpConnection:
    """One configured server: its state, its tools, and the task that keeps it connected."""

    def __init__(
        self,
        name: str,
        spec: StdioServer | HttpServer,
        *,
        reconnect_min: float = RECONNECT_MIN_SECONDS,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.name = name
        self.spec = spec
        self.state: State = "starting"
        self.reason: str | None = None
        self.tools: list[Any] = []
        self.reconnect_min = reconnect_min
        self.refresh_seconds = refresh_seconds
        self._server: MCPServer | None = None
        self._stop = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _client(self, token: str | None = None) -> MCPServer:
        spec = self.spec
        # The session's own timeout also bounds each tools/call: never below the call's
        # own timeout, which is what decides (and tells the model "timeout").
        session_timeout = max(SESSION_TIMEOUT_SECONDS, spec.timeout_seconds + 5)
        if isinstance(spec, StdioServer):
            params: Any = {"command": spec.command, "args": spec.args}
            if spec.env:
                params["env"] = spec.env
            if spec.cwd:
                params["cwd"] = spec.cwd
            return MCPServerStdio(
                params, name=self.name, client_session_timeout_seconds=session_timeout
            )
        headers = dict(spec.headers)
        if token is not None:
            # Header names are case-insensitive: a configured "authorization" must not
            # win over (or travel beside) the user's own token.
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = token
        return MCPServerStreamableHttp(
            {"url": spec.url, "headers": headers, "timeout": SESSION_TIMEOUT_SECONDS},
            name=self.name,
            client_session_timeout_seconds=session_timeout,
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_connected(), name=f"mcp-{self.name}")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is None:
            return
        # The task closes its own connection (its finally); one stuck connecting to or
        # listing a hung server is cancelled, which runs the same clean-up.
        _done, pending = await asyncio.wait({self._task}, timeout=STOP_GRACE_SECONDS)
        if pending:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _down(self, reason: str) -> None:
        if self.state != "down" or self.reason != reason:
            log.warning("MCP server %s is down, its tools are unavailable: %s", self.name, reason)
        self.state, self.reason, self.tools = "down", reason, []

    async def _listed(self, server: MCPServer) -> list[Any]:
        tools = []
        for tool in await server.list_tools():
            if not self.spec.offers(tool.name):
                continue
            if not _TOOL_NAME.match(tool.name):
                log.warning(
                    "MCP server %s: tool %r skipped, model providers accept only names of "
                    "letters, digits, _ and - (at most 64)",
                    self.name,
                    tool.name[:200],
                )
                continue
            tools.append(tool)
        return tools

    async def _keep_connected(self) -> None:
        delay = self.reconnect_min
        while not self._stop.is_set():
            server = self._client()
            try:
                await server.connect()  # type: ignore[no-untyped-call]
                self.tools = await self._listed(server)
                self._server, self.state, self.reason = server, "ready", None
                log.info("MCP server %s is ready: %d tools", self.name, len(self.tools))
                delay = self.reconnect_min
                # Listing again refreshes the tools, and fails on a server that is gone.
                while not await self._stopped_or_lost(self.refresh_seconds):
                    self._lost.clear()
                    self.tools = await self._listed(server)
            except Exception as exc:
                self._down(_reason(exc))
            finally:
                self._server = None
                self._lost.clear()
                with contextlib.suppress(Exception):
                    await server.cleanup()  # type: ignore[no-untyped-call]
            if self._stop.is_set() or await self._stopped_or_lost(delay):
                break
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _stopped_or_lost(self, seconds: float) -> bool:
        """Wait up to `seconds`; True if stopping, False on the timeout or a lost server."""
        waiters = [asyncio.create_task(self._stop.wait()), asyncio.create_task(self._lost.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        return self._stop.is_set()

    @property
    def acts_as_user(self) -> bool:
        return isinstance(self.spec, HttpServer) and self.spec.forward_user_token

    async def _call_alone(self, tool: str, arguments: dict[str, Any], token: str | None) -> Any:
        """One call on a connection of its own.

        HTTP calls never share the listing connection: the Agents SDK runs the requests of
        one streamable-HTTP session one at a time (many servers mishandle concurrent
        requests in a session), so one user's slow tool would stall every other turn's
        calls. The cost is one more round trip (initialize) per call. A call that carries
        the user's token needs its own connection anyway: the shared one is the server's
        and must never carry one user's credentials.
        """
        server = self._client(None if token is None else f"Bearer {token}")
        try:
            await server.connect()  # type: ignore[no-untyped-call]
            return await server.call_tool(tool, arguments)
        finally:
            with contextlib.suppress(Exception):
                await server.cleanup()  # type: ignore[no-untyped-call]

    async def call(self, tool: str, arguments: dict[str, Any], token: str | None = None) -> Output:
        server = self._server
        if server is None:
            return failure("unavailable", f"The {self.name} tools are unavailable just now.")
        if self.acts_as_user and token is None:
            return failure(
                "unauthorized", f"The {self.name} tools act as the signed-in user: sign in first."
            )
        if missing := self._missing_arguments(tool, arguments):
            # Checked here, not by the server: the model can correct itself, and a server
            # that answers a bad call by dropping the connection is not reconnected for it.
            return failure("invalid", f"Missing required arguments: {', '.join(missing)}.")
        call = (
            self._call_alone(tool, arguments, token if self.acts_as_user else None)
            if isinstance(self.spec, HttpServer)
            else server.call_tool(tool, arguments)
        )
        try:
            result = await asyncio.wait_for(call, self.spec.timeout_seconds)
        except TimeoutError:
            return failure(
                "timeout",
                f"{tool} took longer than {self.spec.timeout_seconds:g} s and was stopped.",
            )
        except MCPError as exc:
            # The server answered with an error (invalid params, refused token...): it is
            # alive, so no reconnect; the model sees its message.
            log.warning("MCP call %s on %s refused: %s", tool, self.name, _reason(exc))
            return failure("tool_error", _first_line(exc))
        except Exception as exc:
            # The connection broke (or the server refused the call): reconnect in the
            # background; the model is told the tool is unavailable.
            log.warning("MCP call %s on %s failed: %s", tool, self.name, _reason(exc))
            self._lost.set()
            return failure("unavailable", f"The {self.name} tools are unavailable just now.")
        text = result_text(result)
        if getattr(result, "is_error", False):
            return failure("tool_error", text)
        return {"ok": True, "result": text}

    def _missing_arguments(self, tool: str, arguments: dict[str, Any]) -> list[str]:
        listed = next((t for t in self.tools if t.name == tool), None)
        schema = _input_schema(listed) if listed is not None else {}
        required = schema.get("required")
        if not isinstance(required, list):
            return []
        return sorted(name for name in required if isinstance(name, str) and name not in arguments)

    def function_tool(self, tool: Any) -> FunctionTool:
        schema = _input_schema(tool)
        name: str = tool.name

        async def invoke(ctx: ToolContext[Any], raw: str) -> str:
            try:
                arguments = json.loads(raw) if raw else {}
            except ValueError:
                arguments = None
            if not isinstance(arguments, dict):
                return json.dumps(failure("invalid", "The arguments are not a JSON object."))
            request_context = getattr(ctx.context, "request_context", None)
            token = getattr(request_context, "bearer_token", None)
            work: Callable[[], Any] = lambda: self.call(name, arguments, token)  # noqa: E731
            return await run_recorded(ctx, name, arguments, f"Running {name}…", work)

        return FunctionTool(
            name=name,
            description=tool.description or name,
            params_json_schema={"type": "object", "properties": {}, **schema},
            on_invoke_tool=invoke,
            strict_json_schema=False,
        )


class McpTools:
    """Every configured server; the tools of those that are ready."""

    def __init__(self, config: McpConfig, **options: float) -> None:
        self.connections = [
            McpConnection(name, spec, **options)
            for name, spec in config.mcpServers.items()
            if not spec.disabled
        ]

    def start(self) -> None:
        for connection in self.connections:
            connection.start()

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.connections))

    def function_tools(self, taken: frozenset[str] = frozenset()) -> list[FunctionTool]:
        """The tools of the servers that are ready; a name already taken is skipped."""
        tools: list[FunctionTool] = []
        names = set(taken)
        for connection in self.connections:
            for tool in connection.tools:
                if tool.name in names:
                    continue  # the agent's own tool (or an earlier server's) wins
                names.add(tool.name)
                tools.append(connection.function_tool(tool))
        return tools

    def states(self) -> dict[str, dict[str, Any]]:
        """What /health/ready shows: each server's state and tool count.

        Not why a server is down: /health/ready needs no sign-in, and a reason may name
        hosts, paths or a server's own error text. The log has it (`_down`).
        """
        return {c.name: {"state": c.state, "tools": len(c.tools)} for c in self.connections}
