"""A model without its key: `serve` refuses to start, naming the variable; a key the
provider refuses (HTTP 401) is named to the user and by /health/ready."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from chatkit_backend.agent.models import choose_model, missing_key
from chatkit_backend.config import Settings, load_settings

from .conftest import DIRECT, VIA_LITELLM
from .databases import sqlite_url
from .live import live_server, parse_sse
from .processes import clean_env, run_cli
from .scripted_provider import Error, ScriptedProvider, Text


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"MODEL": "anthropic/claude-sonnet-4-5"}, "ANTHROPIC_API_KEY"),
        ({"MODEL": "gemini/gemini-2.5-flash"}, "GEMINI_API_KEY"),
        ({"MODEL": "openai/gpt-4o-mini"}, "OPENAI_API_KEY"),
        ({"MODEL": "litellm/openai/gpt-4o-mini"}, "OPENAI_API_KEY"),
        (
            {"MODEL": "openai/gpt-4o-mini", "MODEL_API_BASE": "https://api.openai.com/v1"},
            "OPENAI_API_KEY",
        ),
        # A key for another provider is no key for this one.
        ({"MODEL": "anthropic/claude-sonnet-4-5", "OPENAI_API_KEY": "o-key"}, "ANTHROPIC_API_KEY"),
    ],
)
def test_serve_refuses_a_cloud_model_without_its_key(
    tmp_path: Path, settings: dict[str, str], variable: str
) -> None:
    result = run_cli("serve", env=clean_env(**settings), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and settings["MODEL"] in lines[0]
    assert "MODEL_API_KEY" in lines[0]
    assert not (tmp_path / "data").exists()  # refused before touching the database


@pytest.fixture
def no_env_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings from the arguments only: no variable of the shell, no .env file."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("no_env_settings")
@pytest.mark.parametrize(
    "overrides",
    [
        {"model": "offline"},
        {},  # no MODEL and no key: the offline model
        {"model": "openai/qwen2.5", "model_api_base": "http://127.0.0.1:11434/v1"},
        {"model": "anthropic/claude-sonnet-4-5", "model_api_key": "k"},
        {"model": "anthropic/claude-sonnet-4-5", "anthropic_api_key": "k"},
        {"model": "gemini/gemini-2.5-flash", "google_api_key": "k"},
        {"model": "gemini/gemini-2.5-flash", "model_api_base": "http://127.0.0.1:4000"},
        # Providers whose key LiteLLM finds by itself, or that need none.
        {"model": "mistral/mistral-small-latest"},
        {"model": "ollama/llama3.1"},
    ],
)
def test_a_model_that_may_work_is_not_refused(overrides: dict[str, str]) -> None:
    assert missing_key(choose_model(load_settings(**overrides))) is None


@pytest.mark.usefixtures("no_env_settings")
def test_the_google_name_for_the_gemini_key_is_passed_on() -> None:
    choice = choose_model(load_settings(model="gemini/gemini-2.5-flash", google_api_key="gk"))
    assert (choice.api_key, choice.key_variable) == ("gk", "GOOGLE_API_KEY")


def chat(url: str, message: str) -> list[dict[str, object]]:
    reply = httpx.post(f"{url}/api/chat/stream", json={"message": message}, timeout=60)
    assert reply.status_code == 200
    return parse_sse(reply.text)


@pytest.mark.parametrize("model", [DIRECT, VIA_LITELLM])
def test_a_refused_key_is_named_to_the_user_and_by_readiness(
    tmp_path: Path, provider: ScriptedProvider, model: str
) -> None:
    settings = load_settings(
        database_url=sqlite_url(tmp_path),
        model=model,
        model_api_base=provider.base_url,
        model_api_key=None,
        openai_api_key="sk-wrong-key-0123",
    )
    provider.enqueue(Error(401, "Incorrect API key provided"))
    with live_server(settings) as url:
        events = chat(url, "hello")
        errors = [e["message"] for e in events if e["type"] == "error"]
        assert errors == [
            "The model provider refused the API key (HTTP 401): check OPENAI_API_KEY."
        ]
        assert "sk-wrong" not in str(events)
        ready = httpx.get(f"{url}/health/ready", timeout=5)
        assert ready.status_code == 200  # the REST API still works: stay in rotation
        assert ready.json()["model"] == "key_rejected"
        assert "OPENAI_API_KEY" in ready.json()["detail"]

        # Answered again (the key was fixed at the provider's end): ready again.
        provider.enqueue(Text("Back."))
        assert [e for e in chat(url, "again") if e["type"] == "text"]
        assert httpx.get(f"{url}/health/ready", timeout=5).json()["model"] == "ok"
