"""AGENT: the todo assistant, the plain `chat` assistant, an operator's factory (the
example in examples/), and SYSTEM_PROMPT, each driving real turns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from agents import Agent

from chatkit_backend.agent.custom import AgentFactoryError, build, load_factory
from chatkit_backend.agent.kit import NO_ACTIONS
from chatkit_backend.agent.plain import OFFLINE_REPLY
from chatkit_backend.agent.registry import agent_problem
from chatkit_backend.agent.setup import STARTUP_CHECK_ID, AgentSetup, fill_prompt
from chatkit_backend.config import ConfigError, load_settings
from examples.temperature_agent import convert, make_agent

from .conftest import is_title_request
from .databases import sqlite_url
from .live import ChatKitClient, assistant_text, bearer_for, signed_in
from .processes import clean_env, run_cli
from .scripted_provider import Call, ScriptedProvider, Text, ToolCalls

SECRET = "agents-test-secret-0123456789abcdef0123"
EXAMPLE = "examples.temperature_agent:make_agent"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Which agent answers has nothing to do with the database: SQLite only."""
    return sqlite_url(tmp_path)


def bearer(user: str) -> dict[str, str]:
    return bearer_for(user, SECRET)


def chat_requests(provider: ScriptedProvider) -> list[dict[str, Any]]:
    return [r for r in provider.requests if not is_title_request(r)]


def system_prompt(request: dict[str, Any]) -> str:
    first = request["messages"][0]
    assert first["role"] == "system"
    return str(first["content"])


def tool_names(request: dict[str, Any]) -> set[str]:
    return {tool["function"]["name"] for tool in request.get("tools") or []}


@pytest.fixture
async def alice_and_bob(server_url: str) -> AsyncIterator[tuple[ChatKitClient, ChatKitClient]]:
    async with signed_in(server_url, SECRET, "alice", "bob") as (alice, bob):
        yield alice, bob


PROMPT = "You help {user_id} on {date}. Literal {braces} stay."


@pytest.mark.parametrize(
    "server_options",
    [{"agent": "chat", "system_prompt": PROMPT, "better_auth_secret": SECRET}],
)
async def test_chat_agent_has_no_tools_and_fills_the_prompt_per_user(
    alice_and_bob: tuple[ChatKitClient, ChatKitClient], provider: ScriptedProvider
) -> None:
    alice, bob = alice_and_bob
    provider.enqueue(Text("Hello Alice."), Text("Hello Bob."))
    _, events = await alice.create_thread("hi")
    assert assistant_text(events) == "Hello Alice."
    await bob.create_thread("hi")

    first, second = chat_requests(provider)
    today = date.today().isoformat()
    assert system_prompt(first) == f"You help alice on {today}. Literal {{braces}} stay."
    assert system_prompt(second) == f"You help bob on {today}. Literal {{braces}} stay."
    assert "tools" not in first and "tools" not in second


@pytest.mark.parametrize("server_options", [{"agent": "chat"}])
async def test_chat_agent_without_a_prompt_is_a_plain_assistant(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("Paris."))
    _, events = await client.create_thread("capital of France?")
    assert assistant_text(events) == "Paris."
    (request,) = chat_requests(provider)
    assert system_prompt(request).startswith("You are a helpful, concise assistant.")
    assert date.today().isoformat() in system_prompt(request)
    assert "tools" not in request


@pytest.mark.parametrize("server_options", [{"system_prompt": "Tasks for {user_id} only."}])
async def test_system_prompt_replaces_the_todo_instructions_and_keeps_its_tools(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(Text("Sure."))
    await client.create_thread("hello")
    (request,) = chat_requests(provider)
    assert system_prompt(request) == "Tasks for local only."
    assert {"add_task", "list_tasks"} <= tool_names(request)


@pytest.mark.parametrize("model_name", ["offline"])
@pytest.mark.parametrize("server_options", [{"agent": "chat"}])
async def test_chat_agent_on_the_offline_model_says_plainly_what_it_is(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    thread_id, events = await client.create_thread("tell me a joke")
    assert assistant_text(events) == OFFLINE_REPLY
    assert assistant_text(await client.send(thread_id, "add a task to buy bread")) == OFFLINE_REPLY
    assert provider.requests == []


@pytest.mark.parametrize("model_name", ["offline"])
async def test_todo_agent_on_the_offline_model_still_keeps_tasks(client: ChatKitClient) -> None:
    thread_id, events = await client.create_thread("add a task to buy bread")
    assert "buy bread" in assistant_text(events).lower()
    events = await client.send(thread_id, "show my tasks")
    widgets = [
        e for e in events if e["type"] == "thread.item.done" and e["item"]["type"] == "widget"
    ]
    assert len(widgets) == 1


@pytest.mark.parametrize("server_options", [{"agent": EXAMPLE}])
async def test_the_example_agent_calls_its_tool_and_shows_its_widget(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(
        ToolCalls([Call("convert_temperature", {"value": 100, "unit": "celsius"})]),
        Text("100 °C is 212 °F."),
    )
    thread_id, events = await client.create_thread("100 C in F?")
    assert assistant_text(events) == "100 °C is 212 °F."

    first, second = chat_requests(provider)
    assert tool_names(first) == {"convert_temperature"}
    assert system_prompt(first).startswith("You convert temperatures")
    # The tool's output went back to the model.
    outputs = [m for m in second["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in outputs] == ["100 °C is 212 °F"]

    widgets = [i for i in await client.items(thread_id) if i["type"] == "widget"]
    assert len(widgets) == 1, "the widget is stored with the thread"
    widget = widgets[0]
    assert widget["copy_text"] == "100 °C is 212 °F"
    assert widget["widget"]["type"] == "Card"
    assert widget["widget"]["children"][1]["value"] == "100 °C = 212 °F"


@pytest.mark.parametrize("model_name", ["offline"])
@pytest.mark.parametrize("server_options", [{"agent": EXAMPLE}])
async def test_a_custom_agent_on_the_offline_model_answers_plainly(client: ChatKitClient) -> None:
    _, events = await client.create_thread("100 C in F?")
    assert assistant_text(events) == OFFLINE_REPLY


@pytest.mark.parametrize("server_options", [{"agent": EXAMPLE}])
async def test_an_action_on_a_custom_agents_widget_is_refused_plainly(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(
        ToolCalls([Call("convert_temperature", {"value": 0, "unit": "celsius"})]), Text("32 °F.")
    )
    thread_id, _ = await client.create_thread("0 C?")
    (widget,) = [i for i in await client.items(thread_id) if i["type"] == "widget"]
    action = {"type": "refresh", "payload": {}}

    events = await client.stream(
        "threads.custom_action", thread_id=thread_id, item_id=widget["id"], action=action
    )
    assert [e["message"] for e in events if e["type"] == "notice"] == [NO_ACTIONS]
    response = await client.post(
        {
            "type": "threads.sync_custom_action",
            "params": {"thread_id": thread_id, "item_id": widget["id"], "action": action},
        }
    )
    assert response.status_code == 400
    assert response.json()["detail"] == NO_ACTIONS


def test_the_factory_gets_the_turn_and_the_example_converts() -> None:
    settings = load_settings(agent=EXAMPLE)
    agent = make_agent(AgentSetup("u1", "thr_1", settings, today=date(2030, 1, 2)))
    assert isinstance(agent.instructions, str) and "2030-01-02" in agent.instructions
    assert convert(-40, "celsius") == (-40.0, "fahrenheit")
    assert convert(212, "fahrenheit") == (100.0, "celsius")
    check = AgentSetup.for_check(settings)
    assert (check.user_id, check.thread_id, check.startup_check) == (
        STARTUP_CHECK_ID,
        STARTUP_CHECK_ID,
        True,
    )


def test_fill_prompt_fills_only_its_two_placeholders() -> None:
    text = fill_prompt("{user_id} {date} {other} {{x}}", today=date(2026, 1, 5), user_id="ann")
    assert text == "ann 2026-01-05 {other} {{x}}"


def raising(_setup: AgentSetup) -> Agent[Any]:
    raise RuntimeError("no database for you")


def not_an_agent(_setup: AgentSetup) -> Any:
    return "an agent, honest"


NOT_CALLABLE = 42


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_package.agent:make", "cannot import no_such_package.agent: ModuleNotFoundError"),
        ("tests.test_agents:missing", "tests.test_agents has no missing"),
        ("tests.test_agents:NOT_CALLABLE", "NOT_CALLABLE is not callable"),
        ("tests.test_agents:raising", "the factory raised RuntimeError: no database for you"),
        ("tests.test_agents:not_an_agent", "the factory returned str, not an agents.Agent"),
    ],
)
def test_a_broken_factory_is_named_in_one_line(spec: str, message: str) -> None:
    settings = load_settings(agent=spec)
    with pytest.raises(AgentFactoryError) as caught:
        build(spec, load_factory(spec), AgentSetup.for_check(settings))
    text = str(caught.value)
    assert text.startswith(f"AGENT={spec}: ")
    assert message in text
    assert "\n" not in text


def test_the_serve_check_passes_a_working_factory() -> None:
    assert agent_problem(load_settings(agent=EXAMPLE)) is None
    assert agent_problem(load_settings(agent="tests.test_agents:raising")) == (
        "AGENT=tests.test_agents:raising: the factory raised RuntimeError: no database for you"
    )


def test_a_broken_factory_stops_start_up_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "my_agent.py").write_text(
        "def make(setup):\n    raise ValueError('MY_API_URL is not set')\n"
    )
    env = clean_env(AGENT="my_agent:make", DATABASE_URL=sqlite_url(tmp_path))
    result = run_cli("serve", "--port", "1", env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "chatkit-backend: AGENT=my_agent:make: the factory raised ValueError: MY_API_URL is not set"
    ]


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"agent": "todo list"}, "AGENT"),
        ({"agent": "module_without_factory"}, "AGENT"),
        ({"system_prompt_file": "/no/such/prompt.txt"}, "SYSTEM_PROMPT_FILE"),
    ],
)
def test_agent_settings_are_checked_with_their_names(
    overrides: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    assert str(caught.value).startswith(f"{variable}:")


def test_system_prompt_file_is_read_and_excludes_system_prompt(tmp_path: Path) -> None:
    path = tmp_path / "prompt.md"
    path.write_text("Be brief, {user_id}.\n", encoding="utf-8")
    assert load_settings(system_prompt_file=str(path)).system_prompt == "Be brief, {user_id}.\n"
    with pytest.raises(ConfigError, match="SYSTEM_PROMPT and SYSTEM_PROMPT_FILE are both set"):
        load_settings(system_prompt_file=str(path), system_prompt="x")
    assert load_settings(system_prompt="  ").system_prompt is None
