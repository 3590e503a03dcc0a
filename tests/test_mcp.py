"""MCP_CONFIG: a real MCP server of ours (tests/mcp_server.py) on stdio and on streamable
HTTP, driven through the scripted provider: tool calls end to end, allowed and blocked
tools, timeouts, a server down at start, dying mid-session and coming back."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from chatkit_backend.agent.mcp_config import McpConfigError, load_mcp_config
from chatkit_backend.agent.mcp_tools import (
    MAX_RESULT_CHARS,
    SESSION_TIMEOUT_SECONDS,
    McpConnection,
    result_text,
)
from chatkit_backend.config import ConfigError, load_settings

from .conftest import is_title_request, scripted_settings
from .databases import sqlite_url
from .live import ChatKitClient, assistant_text, free_port, live_server, parse_sse
from .scripted_provider import Call, ScriptedProvider, Text, ToolCalls

SERVER = str(Path(__file__).with_name("mcp_server.py"))
TODO_TOOLS = {"add_task", "list_tasks", "complete_task", "update_task", "delete_task"}


def chat_requests(provider: ScriptedProvider) -> list[dict[str, Any]]:
    return [r for r in provider.requests if not is_title_request(r)]


def tool_names(request: dict[str, Any]) -> set[str]:
    return {tool["function"]["name"] for tool in request.get("tools") or []}


def tool_outputs(request: dict[str, Any]) -> list[Any]:
    return [json.loads(m["content"]) for m in request["messages"] if m["role"] == "tool"]


def write_config(tmp_path: Path, servers: dict[str, Any]) -> str:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return str(path)


def mcp_state(url: str, name: str) -> dict[str, Any]:
    ready = httpx.get(f"{url}/health/ready", timeout=5)
    if ready.status_code != 200:
        return {"state": "loading"}
    state: dict[str, Any] = ready.json()["mcp"][name]
    return state


def wait_for(url: str, name: str, state: str, timeout: float = 60) -> dict[str, Any]:
    """Until the server named `name` is in `state` (reconnects back off up to seconds)."""
    deadline = time.monotonic() + timeout
    while (current := mcp_state(url, name))["state"] != state:
        if time.monotonic() > deadline:
            raise TimeoutError(f"MCP server {name} is {current}, not {state}")
        time.sleep(0.1)
    return current


class HttpMcpServer:
    """tests/mcp_server.py on streamable HTTP in a subprocess, on a fixed port it can be
    stopped and started again on."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "http", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the MCP test server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def http_mcp() -> Iterator[HttpMcpServer]:
    server = HttpMcpServer(free_port())
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def served(tmp_path: Path, provider: ScriptedProvider, **options: Any) -> Iterator[str]:
    settings = scripted_settings(sqlite_url(tmp_path), provider, **options)
    with live_server(settings) as url:
        yield url


async def test_a_stdio_servers_tools_are_called_shown_recorded_and_replayed(
    tmp_path: Path, provider: ScriptedProvider
) -> None:
    config = write_config(
        tmp_path,
        {
            "calc": {
                "command": sys.executable,
                "args": [SERVER, "stdio"],
                "blocked_tools": ["secret_tool"],
                "timeout_seconds": 1,
                "env": {"MCP_TEST_SERVER": "1"},
                "cwd": str(tmp_path),
            }
        },
    )
    with served(tmp_path, provider, mcp_config=config) as url:
        state = wait_for(url, "calc", "ready")
        # Every tool but the blocked one and admin.list (a name providers refuse).
        assert state["tools"] == 8
        client = ChatKitClient(url)
        try:
            provider.enqueue(ToolCalls([Call("add", {"a": 2, "b": 3})]), Text("It is 5."))
            thread_id, events = await client.create_thread("what is 2 + 3?")
            assert assistant_text(events) == "It is 5."
            first, second = chat_requests(provider)
            assert tool_names(first) == TODO_TOOLS | {
                "add",
                "shout",
                "slow",
                "big",
                "fail",
                "whoami",
                "whoami_too",
                "pid",
            }
            assert tool_outputs(second) == [{"ok": True, "result": "5"}]
            # Shown like a built-in tool: a workflow, and the client effects.
            effects = [e["name"] for e in events if e["type"] == "client_effect"]
            assert effects == ["tool_call", "tool_result"]
            assert any(
                e["type"] == "thread.item.done" and e["item"]["type"] == "workflow" for e in events
            )

            # A slow call is stopped at its timeout; a failing tool says so; the turn goes on.
            provider.enqueue(
                ToolCalls([Call("slow", {"seconds": 5})]),
                ToolCalls([Call("fail", {})]),
                Text("Sorry."),
            )
            assert assistant_text(await client.send(thread_id, "go slow")) == "Sorry."
            slow, failed = (
                tool_outputs(chat_requests(provider)[3]),
                tool_outputs(chat_requests(provider)[4]),
            )
            assert slow[-1]["error"] == "timeout"
            assert failed[-1]["error"] == "tool_error"
            assert failed[-1]["message"] == "Error executing tool fail"  # the server's words

            # Later turns replay the calls to the model; the REST view shows them.
            provider.enqueue(Text("Bye."))
            await client.send(thread_id, "thanks")
            replayed = [
                call["function"]["name"]
                for m in chat_requests(provider)[-1]["messages"]
                if m["role"] == "assistant"
                for call in m.get("tool_calls") or []
            ]
            assert replayed == ["add", "slow", "fail"]
            detail = (await client.http.get(f"/api/conversations/{thread_id}")).json()
            calls = [c for m in detail["messages"] for c in m.get("tool_calls", [])]
            assert [(c["name"], c["result"]["ok"]) for c in calls] == [
                ("add", True),
                ("slow", False),
                ("fail", False),
            ]
            metrics = (await client.http.get("/metrics")).text
            assert 'chatkit_tool_calls_total{outcome="timeout",tool="slow"}' in metrics

            # The simple SSE format shows the call like a built-in one.
            provider.enqueue(ToolCalls([Call("shout", {"text": "hi"})]), Text("HI"))
            simple = await client.http.post("/api/chat/stream", json={"message": "shout hi"})
            kinds = [(e["type"], e.get("name")) for e in parse_sse(simple.text)]
            assert ("tool_call", "shout") in kinds and ("tool_result", "shout") in kinds
        finally:
            await client.aclose()


async def test_an_http_server_down_at_start_comes_back_dies_and_comes_back_again(
    tmp_path: Path,
    provider: ScriptedProvider,
    http_mcp: HttpMcpServer,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MCP_TEST_TOKEN", "s3cret-mcp-token")
    config = write_config(
        tmp_path,
        {
            "web": {
                "url": http_mcp.url,
                "headers": {"Authorization": "Bearer ${MCP_TEST_TOKEN}"},
                "allowed_tools": ["shout"],
            }
        },
    )
    with served(tmp_path, provider, agent="chat", mcp_config=config) as url:
        # Public: its state, never why (that is in the log, which may name hosts).
        assert wait_for(url, "web", "down") == {"state": "down", "tools": 0}
        client = ChatKitClient(url)
        try:
            # Down: the turn is answered, without the server's tools.
            provider.enqueue(Text("No tools today."))
            thread_id, events = await client.create_thread("shout hello")
            assert assistant_text(events) == "No tools today."
            assert "tools" not in chat_requests(provider)[-1]

            http_mcp.start()
            assert wait_for(url, "web", "ready")["tools"] == 1
            provider.enqueue(ToolCalls([Call("shout", {"text": "hello"})]), Text("HELLO!"))
            assert assistant_text(await client.send(thread_id, "shout hello")) == "HELLO!"
            assert tool_names(chat_requests(provider)[-2]) == {"shout"}
            assert tool_outputs(chat_requests(provider)[-1]) == [{"ok": True, "result": "HELLO"}]

            # Dies mid-session: the call fails softly, the server is reconnected.
            http_mcp.stop()
            provider.enqueue(ToolCalls([Call("shout", {"text": "again"})]), Text("It's gone."))
            assert assistant_text(await client.send(thread_id, "shout again")) == "It's gone."
            assert tool_outputs(chat_requests(provider)[-1])[-1]["error"] == "unavailable"
            wait_for(url, "web", "down")
            http_mcp.start()
            wait_for(url, "web", "ready")
            provider.enqueue(ToolCalls([Call("shout", {"text": "back"})]), Text("BACK"))
            assert assistant_text(await client.send(thread_id, "shout back")) == "BACK"
            assert tool_outputs(chat_requests(provider)[-1])[-1] == {"ok": True, "result": "BACK"}
        finally:
            await client.aclose()
    err = capfd.readouterr().err
    assert "MCP server web is down, its tools are unavailable" in err
    assert "s3cret-mcp-token" not in err


SECRET = "mcp-test-secret-0123456789abcdef0123456789"


def bearer_token(user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")


async def test_the_users_token_goes_only_to_a_server_that_asks_for_it(
    tmp_path: Path, provider: ScriptedProvider, http_mcp: HttpMcpServer
) -> None:
    http_mcp.start()
    config = write_config(
        tmp_path,
        {
            "as_user": {
                "url": http_mcp.url,
                "forward_user_token": True,
                "allowed_tools": ["whoami"],
            },
            "as_service": {
                "url": http_mcp.url,
                "headers": {"Authorization": "Bearer service-token"},
                "allowed_tools": ["whoami_too"],
            },
        },
    )
    options = {"agent": "chat", "mcp_config": config, "better_auth_secret": SECRET}
    with served(tmp_path, provider, **options) as url:
        wait_for(url, "as_user", "ready")
        wait_for(url, "as_service", "ready")
        token = bearer_token("alice")
        client = ChatKitClient(url, {"Authorization": f"Bearer {token}"})
        try:
            provider.enqueue(
                ToolCalls([Call("whoami", {})]), ToolCalls([Call("whoami_too", {})]), Text("ok")
            )
            await client.create_thread("who am I?")
            as_user, as_service = tool_outputs(chat_requests(provider)[-1])
            assert as_user == {"ok": True, "result": f"Bearer {token}"}
            assert as_service == {"ok": True, "result": "Bearer service-token"}
        finally:
            await client.aclose()


async def test_a_forwarding_server_refuses_a_caller_without_a_token(
    tmp_path: Path, provider: ScriptedProvider, http_mcp: HttpMcpServer
) -> None:
    http_mcp.start()
    config = write_config(tmp_path, {"as_user": {"url": http_mcp.url, "forward_user_token": True}})
    with served(tmp_path, provider, agent="chat", mcp_config=config) as url:
        wait_for(url, "as_user", "ready")
        client = ChatKitClient(url)  # local mode: nobody signed in, no token to forward
        try:
            provider.enqueue(ToolCalls([Call("whoami", {})]), Text("ok"))
            await client.create_thread("who am I?")
            (output,) = tool_outputs(chat_requests(provider)[-1])
            assert output["error"] == "unauthorized"
        finally:
            await client.aclose()


def test_a_tool_named_like_the_agents_own_is_left_out(tmp_path: Path) -> None:
    # Unit-level: the todo agent's list_tasks wins over a server's tool of that name.
    from chatkit_backend.agent.mcp_config import McpConfig
    from chatkit_backend.agent.mcp_tools import McpTools

    tools = McpTools(McpConfig.model_validate({"mcpServers": {"a": {"command": "x"}}}))
    connection = tools.connections[0]
    connection.tools = [_Tool("list_tasks"), _Tool("search")]
    assert [t.name for t in tools.function_tools(frozenset({"list_tasks"}))] == ["search"]
    assert tools.states() == {"a": {"state": "starting", "tools": 2}}


class _Tool:
    def __init__(self, name: str) -> None:
        self.name = name
        self.description = None
        self.input_schema = {"type": "object", "properties": {"q": {"type": "string"}}}


def test_big_results_are_cut_before_the_model_reads_them() -> None:
    from mcp_types import CallToolResult, TextContent

    result = CallToolResult(content=[TextContent(text="y" * (MAX_RESULT_CHARS + 10))])
    text = result_text(result)
    assert text.startswith("y" * MAX_RESULT_CHARS)
    assert text.endswith("[cut: 10 more characters]")


# -- the config file -------------------------------------------------------------------


def test_config_reads_both_transports_and_fills_variables(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "files": {"command": "npx", "args": ["-y", "fs", "${HOME_DIR}"], "x": 1},
                    "api": {"url": "https://api.example/mcp", "headers": {"K": "${API_KEY}"}},
                }
            }
        )
    )
    config = load_mcp_config(path, {"HOME_DIR": "/srv", "API_KEY": "k-123"})
    files, api = config.mcpServers["files"], config.mcpServers["api"]
    assert files.transport == "stdio" and files.args == ["-y", "fs", "/srv"]
    assert api.transport == "http" and api.headers == {"K": "k-123"}
    assert api.offers("anything") and files.timeout_seconds == 30


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"mcpServers": {"a": {"url": "https://x/${NOPE}"}}}', "NOPE is not set"),
        ("{not json", "is not valid JSON"),
        ('{"mcpServers": {"a": {"url": "ftp://x"}}}', "mcpServers.a.url"),
        ('{"mcpServers": {"a": {"command": "x", "timeout_seconds": 0}}}', "timeout_seconds"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_place(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(content)
    with pytest.raises(McpConfigError) as caught:
        load_mcp_config(path, {})
    assert message in str(caught.value)
    with pytest.raises(McpConfigError, match="cannot read"):
        load_mcp_config(tmp_path / "missing.json", {})


def test_mcp_config_setting_is_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(mcp_config=str(tmp_path / "missing.json"))
    assert str(caught.value).startswith("MCP_CONFIG:")
    assert load_settings(mcp_config=" ").mcp_config is None


def test_the_callers_token_never_shows_in_a_context_repr() -> None:
    from chatkit_backend.context import RequestContext

    ctx = RequestContext(user_id="alice", bearer_token="eyJ.secret.token")
    assert ctx.bearer_token == "eyJ.secret.token"
    assert "secret" not in repr(ctx)


async def test_calls_that_cannot_be_made_fail_softly() -> None:
    from agents import RunContextWrapper

    from chatkit_backend.agent.mcp_config import McpConfig
    from chatkit_backend.agent.mcp_tools import McpTools
    from chatkit_backend.agent.tool_activity import run_recorded

    tools = McpTools(McpConfig.model_validate({"mcpServers": {"a": {"command": "x"}}}))
    connection = tools.connections[0]
    # Not connected (a call racing the server going down): unavailable, not an exception.
    assert (await connection.call("search", {}))["error"] == "unavailable"
    # Arguments that are not a JSON object go back to the model as such.
    tool = connection.function_tool(_Tool("search"))
    answer = json.loads(await tool.on_invoke_tool(RunContextWrapper(None), "[1, 2]"))
    assert answer["error"] == "invalid"

    async def broken() -> dict[str, Any]:
        raise RuntimeError("internal detail")

    # Outside a chat (no ChatKit context) the call still runs; a failure says only the name.
    output = json.loads(await run_recorded(RunContextWrapper(None), "search", {}, "…", broken))
    assert output == {
        "ok": False,
        "error": "unavailable",
        "message": "search failed. Please try again in a moment.",
    }


def test_reasons_and_results_read_plainly() -> None:
    from mcp_types import CallToolResult, ImageContent

    from chatkit_backend.agent.mcp_tools import _reason

    group = ExceptionGroup("outer", [ConnectionRefusedError("refused\nmore")])
    assert _reason(group) == "ConnectionRefusedError: refused"
    assert _reason(TimeoutError()) == "TimeoutError"
    image = CallToolResult(content=[ImageContent(data="AAAA", mime_type="image/png")])
    assert json.loads(result_text(image))["type"] == "image"
    structured = CallToolResult(content=[], structured_content={"n": 1})
    assert result_text(structured) == '{"n": 1}'


# -- one connection, driven directly against the real test server ----------------------


async def connected(spec: dict[str, Any], refresh_seconds: float = 60) -> McpConnection:
    from chatkit_backend.agent.mcp_config import McpConfig

    config = McpConfig.model_validate({"mcpServers": {"s": spec}})
    connection = McpConnection(
        "s", config.mcpServers["s"], reconnect_min=0.1, refresh_seconds=refresh_seconds
    )
    connection.start()
    await until_state(connection, "ready")
    return connection


async def until_state(connection: McpConnection, state: str) -> None:
    deadline = time.monotonic() + 60
    while connection.state != state:
        assert time.monotonic() < deadline, f"not {state}: {connection.reason}"
        await asyncio.sleep(0.02)


async def test_a_stdio_server_that_dies_quietly_is_noticed_and_started_again() -> None:
    # A short refresh: listing the tools again is what notices a server that died
    # between calls; the keeper then starts a new process and offers its tools again.
    connection = await connected(
        {"command": sys.executable, "args": [SERVER, "stdio"]}, refresh_seconds=0.2
    )
    try:
        first = await connection.call("pid", {})
        assert first["ok"]
        os.kill(int(first["result"]), signal.SIGKILL)
        await until_state(connection, "down")
        assert connection.tools == []
        await until_state(connection, "ready")
        second = await connection.call("pid", {})
        assert second["ok"] and second["result"] != first["result"]
    finally:
        await connection.stop()


async def test_http_calls_of_several_turns_run_side_by_side(http_mcp: HttpMcpServer) -> None:
    http_mcp.start()
    # Three calls of 1 s with a 2.5 s limit: one after the other (one shared session, as
    # the SDK runs it) the third would time out; each on its own connection, none does.
    connection = await connected({"url": http_mcp.url, "timeout_seconds": 2.5})
    try:
        outputs = await asyncio.gather(
            *(connection.call("slow", {"seconds": 1.0}) for _ in range(3))
        )
        assert outputs == [{"ok": True, "result": "done"}] * 3
    finally:
        await connection.stop()


async def test_argument_and_tool_errors_go_back_to_the_model_without_a_reconnect() -> None:
    connection = await connected({"command": sys.executable, "args": [SERVER, "stdio"]})
    try:
        offered = {t.name for t in connection.tools}
        assert "add" in offered and "admin.list" not in offered
        missing = await connection.call("add", {"a": 1})
        assert missing == {
            "ok": False,
            "error": "invalid",
            "message": "Missing required arguments: b.",
        }
        broken = await connection.call("fail", {})
        assert broken["error"] == "tool_error"
        assert not connection._lost.is_set() and connection.state == "ready"
        assert await connection.call("add", {"a": 1, "b": 2}) == {"ok": True, "result": "3"}
    finally:
        await connection.stop()


async def test_a_forwarded_token_replaces_a_configured_authorization_in_any_case(
    http_mcp: HttpMcpServer,
) -> None:
    http_mcp.start()
    spec = {
        "url": http_mcp.url,
        "headers": {"authorization": "Bearer STATIC"},
        "forward_user_token": True,
    }
    connection = await connected(spec)
    try:
        answer = await connection.call("whoami", {}, token="users-own")
        assert answer == {"ok": True, "result": "Bearer users-own"}
    finally:
        await connection.stop()


async def test_stop_does_not_wait_for_a_server_that_never_answers() -> None:
    from chatkit_backend.agent.mcp_config import StdioServer

    hung = StdioServer(command=sys.executable, args=["-c", "import time; time.sleep(120)"])
    connection = McpConnection("hung", hung)
    connection.start()
    await asyncio.sleep(0.5)  # connecting: the initialize request is never answered
    assert connection.state == "starting"
    await connection.stop()
    # Cancelled after the grace, not left to the session's own timeout of 35 s.
    assert connection._task is not None and connection._task.cancelled()


def test_call_timeouts_above_the_session_default_are_honoured() -> None:
    from chatkit_backend.agent.mcp_config import HttpServer

    connection = McpConnection("s", HttpServer(url="http://127.0.0.1:1/mcp", timeout_seconds=60))
    assert connection._client().client_session_timeout_seconds == 65
    short = McpConnection("s", HttpServer(url="http://127.0.0.1:1/mcp", timeout_seconds=1))
    assert short._client().client_session_timeout_seconds == SESSION_TIMEOUT_SECONDS


def test_a_disabled_server_is_not_started() -> None:
    from chatkit_backend.agent.mcp_config import McpConfig
    from chatkit_backend.agent.mcp_tools import McpTools

    config = McpConfig.model_validate(
        {"mcpServers": {"off": {"command": "x", "disabled": True}, "on": {"command": "y"}}}
    )
    assert [c.name for c in McpTools(config).connections] == ["on"]
