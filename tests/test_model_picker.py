"""MODELS and ChatKit's inference_options: the model a turn runs on (the provider sees its
id), a thread keeping its model, forced tools, refusals before anything is stored, and
usage by the model actually used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from chatkit_backend.agent.catalogue import build_catalogue
from chatkit_backend.config import ConfigError, load_settings
from chatkit_backend.db import create_engine
from chatkit_backend.runs.tables import UsageRow

from .conftest import is_title_request
from .databases import sqlite_url
from .live import ChatKitClient, assistant_text
from .processes import clean_env, run_cli
from .scripted_provider import Call, ScriptedProvider, Text, ToolCalls

ALPHA, BETA, GAMMA = "openai/alpha", "openai/beta", "litellm/openai/gamma"
MODELS = f"{ALPHA}=Alpha,{BETA}=Beta, {GAMMA}"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The model picker keeps its state in thread metadata and items: SQLite is enough."""
    return sqlite_url(tmp_path)


@pytest.fixture
def model_name() -> str:
    return ALPHA


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"models": MODELS}


def text_input(text: str, **options: Any) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": options,
    }


def chat_requests(provider: ScriptedProvider) -> list[dict[str, Any]]:
    return [r for r in provider.requests if not is_title_request(r)]


async def create(client: ChatKitClient, text: str, **options: Any) -> str:
    events = await client.stream("threads.create", input=text_input(text, **options))
    assert events[0]["type"] == "thread.created"
    assert assistant_text(events)
    thread_id: str = events[0]["thread"]["id"]
    return thread_id


async def send(client: ChatKitClient, thread_id: str, text: str, **options: Any) -> str:
    events = await client.stream(
        "threads.add_user_message", thread_id=thread_id, input=text_input(text, **options)
    )
    return assistant_text(events)


async def test_models_are_listed_for_chatkits_composer(client: ChatKitClient) -> None:
    response = await client.http.get("/api/models")
    assert response.status_code == 200
    assert response.json() == [
        {"id": ALPHA, "label": "Alpha", "default": True},
        {"id": BETA, "label": "Beta", "default": False},
        {"id": GAMMA, "label": GAMMA, "default": False},
    ]


async def test_the_chosen_model_answers_and_the_thread_keeps_it(
    client: ChatKitClient, provider: ScriptedProvider, database_url: str
) -> None:
    thread_id = await create(client, "one")
    assert await send(client, thread_id, "two", model=BETA) == "Echo: two"
    await send(client, thread_id, "three")  # no model named: the thread's last
    await send(client, thread_id, "four", model=GAMMA)  # through LiteLLM
    await send(client, thread_id, "five")

    # The provider saw each turn's model (LiteLLM strips its routing prefix too).
    assert [r["model"] for r in chat_requests(provider)] == [
        "alpha",
        "beta",
        "beta",
        "gamma",
        "gamma",
    ]
    # The REST view says which model wrote each reply.
    detail = (await client.http.get(f"/api/conversations/{thread_id}")).json()
    replies = [m for m in detail["messages"] if m["role"] == "assistant"]
    assert [m["model"] for m in replies] == [ALPHA, BETA, BETA, GAMMA, GAMMA]
    assert all("model" not in m for m in detail["messages"] if m["role"] == "user")
    # ChatKit's own items carry it on the user's message.
    users = [i for i in await client.items(thread_id) if i["type"] == "user_message"]
    assert [u["inference_options"]["model"] for u in users] == [ALPHA, BETA, BETA, GAMMA, GAMMA]

    # Usage rows are by the model actually used.
    engine = create_engine(load_settings(database_url=database_url).async_database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(UsageRow.model, func.count())
                .where(UsageRow.thread_id == thread_id)
                .group_by(UsageRow.model)
            )
            assert {model: count for model, count in rows} == {ALPHA: 1, BETA: 2, GAMMA: 2}
    finally:
        await engine.dispose()
    # And so are the metrics.
    metrics = (await client.http.get("/metrics")).text
    assert f'chatkit_turns_total{{model="{GAMMA}",outcome="completed"}}' in metrics


async def test_a_new_thread_starts_on_the_default_again(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    await create(client, "one", model=BETA)
    await create(client, "two")
    assert [r["model"] for r in chat_requests(provider)] == ["beta", "alpha"]


async def test_an_unknown_model_is_400_before_anything_is_stored(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    response = await client.post(
        {"type": "threads.create", "params": {"input": text_input("hi", model="openai/gpt-9")}}
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "unknown_model"
    assert "openai/gpt-9" in problem["detail"] and ALPHA in problem["detail"]
    assert (await client.call("threads.list", limit=10))["data"] == []

    thread_id = await create(client, "hello")
    before = await client.items(thread_id)
    response = await client.post(
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": text_input("again", model="nope")},
        }
    )
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_model"
    assert await client.items(thread_id) == before
    assert len(chat_requests(provider)) == 1


async def test_tool_choice_forces_that_tool_for_the_turn(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.enqueue(ToolCalls([Call("list_tasks", {})]), Text("You have no tasks."))
    thread_id = await create(client, "anything", tool_choice={"id": "list_tasks"})

    forced, after = chat_requests(provider)
    assert forced["tool_choice"] == {"type": "function", "function": {"name": "list_tasks"}}
    # Forced once: after the call the model is free to answer (the SDK resets it).
    assert "tool_choice" not in after or after["tool_choice"] in (None, "auto")

    provider.enqueue(Text("Hi."))
    await send(client, thread_id, "hello")
    assert "tool_choice" not in chat_requests(provider)[-1]


async def test_a_tool_the_agent_does_not_have_is_400(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    response = await client.post(
        {
            "type": "threads.create",
            "params": {"input": text_input("hi", tool_choice={"id": "drop_database"})},
        }
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "unknown_tool"
    assert "list_tasks" in problem["detail"]
    assert (await client.call("threads.list", limit=10))["data"] == []
    assert provider.requests == []


@pytest.mark.parametrize("server_options", [{"models": MODELS, "agent": "chat"}])
async def test_an_agent_without_tools_takes_no_tool_choice(client: ChatKitClient) -> None:
    response = await client.post(
        {
            "type": "threads.create",
            "params": {"input": text_input("hi", tool_choice={"id": "list_tasks"})},
        }
    )
    assert response.status_code == 400
    assert "tools: none" in response.json()["detail"]


@pytest.mark.parametrize("server_options", [{}])
async def test_without_models_the_one_model_is_the_list(client: ChatKitClient) -> None:
    # MODEL alone (here openai/alpha): one entry, the default, labelled by its id.
    assert (await client.http.get("/api/models")).json() == [
        {"id": ALPHA, "label": ALPHA, "default": True}
    ]


def test_a_model_no_longer_offered_falls_back_to_the_threads_or_the_default() -> None:
    # A thread (or a retried message) may name a model MODELS has dropped since.
    catalogue = build_catalogue(load_settings(models=MODELS))
    assert catalogue.for_turn(None, "openai/retired") == ALPHA
    assert catalogue.for_turn("openai/retired", BETA) == BETA
    assert catalogue.for_turn(None, None) == ALPHA


# -- settings --------------------------------------------------------------------------


def test_models_setting_reads_ids_and_labels() -> None:
    settings = load_settings(models=" gemini/gemini-2.5-flash=Gemini Flash ,openai/gpt-4o-mini,,")
    assert settings.models == [
        ("gemini/gemini-2.5-flash", "Gemini Flash"),
        ("openai/gpt-4o-mini", "openai/gpt-4o-mini"),
    ]
    catalogue = build_catalogue(
        load_settings(models="offline,anthropic/claude-sonnet-4-5", anthropic_api_key="a-key")
    )
    offline, claude = catalogue.entries
    assert offline.choice.is_offline
    assert (claude.choice.api_key, claude.choice.key_variable) == ("a-key", "ANTHROPIC_API_KEY")


@pytest.mark.parametrize(
    ("models", "model", "message"),
    [
        ("a/x,a/x=Again", None, "a/x is listed twice"),
        ("=Label", None, "is not `id` or `id=label`"),
        ("a/x y", None, "is not `id` or `id=label`"),
        ("a/x,a/y", "a/y", "MODEL=a/y but the first of MODELS (the default) is a/x"),
    ],
)
def test_bad_models_settings_are_named(models: str, model: str | None, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(models=models, model=model)
    assert message in str(caught.value)


def test_model_may_repeat_the_first_of_models() -> None:
    assert build_catalogue(load_settings(models="a/x,a/y", model="a/x")).default.id == "a/x"


def test_serve_refuses_a_listed_model_without_its_key(tmp_path: Path) -> None:
    env = clean_env(MODELS="offline,anthropic/claude-sonnet-4-5", DATABASE_URL=sqlite_url(tmp_path))
    result = run_cli("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ANTHROPIC_API_KEY" in lines[0]


async def test_models_need_a_signed_in_caller(tmp_path: Path, provider: ScriptedProvider) -> None:
    from .conftest import scripted_settings
    from .live import live_server

    settings = scripted_settings(
        sqlite_url(tmp_path), provider, better_auth_secret="x" * 40, models=MODELS, model=ALPHA
    )
    with live_server(settings) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/api/models")).status_code == 401


def test_a_retried_message_forcing_a_tool_gone_since_runs_unforced() -> None:
    from datetime import datetime

    from agents import Agent
    from chatkit.types import InferenceOptions, ToolChoice, UserMessageItem, UserMessageTextContent

    from chatkit_backend.agent.todo_tools import TOOLS
    from chatkit_backend.chat.server import forced_tool

    def message(tool: str | None) -> UserMessageItem:
        return UserMessageItem(
            id="msg_1",
            thread_id="thr_1",
            created_at=datetime.now(),
            content=[UserMessageTextContent(text="hi")],
            inference_options=InferenceOptions(tool_choice=ToolChoice(id=tool) if tool else None),
        )

    agent: Agent[Any] = Agent(name="a", tools=list(TOOLS))
    assert forced_tool(message("list_tasks"), agent) == "list_tasks"
    assert forced_tool(message("an_mcp_tool_gone_since"), agent) is None
    assert forced_tool(message(None), agent) is None
    assert forced_tool(None, agent) is None
