"""Which model answers: MODEL, then the first provider with a key, else offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatkit_backend.agent.models import ModelChoice, ModelClient, choose_model
from chatkit_backend.agent.offline import OfflineModel, Plan
from chatkit_backend.config import Settings, load_settings

SETTING_VARS = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SETTING_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)


def choose(**overrides: object) -> ModelChoice:
    return choose_model(load_settings(**overrides))


ALL_KEYS = {"gemini_api_key": "g-key", "openai_api_key": "o-key", "anthropic_api_key": "a-key"}


def test_model_offline_wins_even_with_keys() -> None:
    choice = choose(model="offline", **ALL_KEYS)
    assert choice.name == "offline"
    assert choice.is_offline
    assert choice.api_key is None


def test_model_set_is_used_with_its_base_and_key() -> None:
    choice = choose(
        model="openai/qwen2.5",
        model_api_base="http://127.0.0.1:8080/v1",
        model_api_key="local-key",
        **ALL_KEYS,
    )
    assert choice.name == "openai/qwen2.5"
    assert choice.api_base == "http://127.0.0.1:8080/v1"
    assert choice.api_key == "local-key"
    assert not choice.is_offline


def test_model_set_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL", "anthropic/claude-haiku-4-5")
    monkeypatch.setenv("MODEL_API_BASE", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a-key")
    choice = choose_model(load_settings())
    assert (choice.name, choice.api_base, choice.api_key) == (
        "anthropic/claude-haiku-4-5",
        "http://127.0.0.1:9/v1",
        "a-key",
    )


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("gemini/gemini-2.5-pro", "g-key"),
        ("openai/gpt-4.1", "o-key"),
        ("anthropic/claude-sonnet-4-5", "a-key"),
        ("hosted_vllm/llama", None),
    ],
)
def test_provider_key_is_picked_by_model_prefix(model: str, key: str | None) -> None:
    choice = choose(model=model, **ALL_KEYS)
    assert choice.name == model
    assert choice.api_key == key


def test_gemini_key_uses_default_gemini_model() -> None:
    choice = choose(gemini_api_key="g-key")
    assert choice.name == "gemini/gemini-2.5-flash"
    assert choice.api_key == "g-key"


def test_gemini_model_setting_is_honoured() -> None:
    choice = choose(gemini_api_key="g-key", gemini_model="gemini-2.5-pro")
    assert choice.name == "gemini/gemini-2.5-pro"


def test_gemini_comes_first_when_all_keys_are_set() -> None:
    choice = choose(**ALL_KEYS)
    assert choice.name.startswith("gemini/")
    assert choice.api_key == "g-key"


def test_openai_key_only() -> None:
    choice = choose(openai_api_key="o-key")
    assert choice.name.startswith("openai/")
    assert choice.api_key == "o-key"


def test_openai_before_anthropic() -> None:
    choice = choose(openai_api_key="o-key", anthropic_api_key="a-key")
    assert choice.name.startswith("openai/")


def test_anthropic_key_only() -> None:
    choice = choose(anthropic_api_key="a-key")
    assert choice.name.startswith("anthropic/")
    assert choice.api_key == "a-key"


def test_nothing_configured_is_offline() -> None:
    choice = choose()
    assert choice.is_offline
    assert choice.name == "offline"


def test_blank_model_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL", "  ")
    assert choose().is_offline
    monkeypatch.setenv("OPENAI_API_KEY", "o-key")
    assert choose().name.startswith("openai/")


def test_build_model_offline_is_an_offline_model() -> None:
    model = ModelClient(choose()).agent_model(lambda conversation: Plan(text="hi"))
    assert isinstance(model, OfflineModel)


@pytest.mark.parametrize(
    ("model", "route", "model_id"),
    [
        ("openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("openai/qwen2.5", "openai", "qwen2.5"),
        ("litellm/openai/qwen2.5", "litellm", "openai/qwen2.5"),
        ("gemini/gemini-2.5-flash", "litellm", "gemini/gemini-2.5-flash"),
        ("anthropic/claude-sonnet-4-5", "litellm", "anthropic/claude-sonnet-4-5"),
        ("ollama_chat/llama3.1", "litellm", "ollama_chat/llama3.1"),
        ("offline", "offline", "offline"),
    ],
)
def test_model_route(model: str, route: str, model_id: str) -> None:
    choice = choose(model=model)
    assert (choice.route, choice.model_id) == (route, model_id)


def test_litellm_prefix_still_finds_the_providers_key() -> None:
    assert choose(model="litellm/openai/gpt-4.1", **ALL_KEYS).api_key == "o-key"


def test_agent_model_by_route() -> None:
    from agents import OpenAIChatCompletionsModel
    from agents.extensions.models.litellm_model import LitellmModel

    planner = lambda conversation: Plan(text="hi")  # noqa: E731
    direct = ModelClient(choose(model="openai/qwen2.5", model_api_base="http://127.0.0.1:9/v1"))
    assert isinstance(direct.agent_model(planner), OpenAIChatCompletionsModel)
    via = ModelClient(
        choose(model="litellm/openai/qwen2.5", model_api_base="http://127.0.0.1:9/v1")
    )
    assert isinstance(via.agent_model(planner), LitellmModel)


IMPORT_APP = """
import sys
import chatkit_backend.app

heavy = ["litellm", "agents", "openai", "alembic"]
print(*[name in sys.modules for name in heavy])
from chatkit_backend.agent.models import ModelClient, choose_model
from chatkit_backend.agent.offline import Plan
from chatkit_backend.config import load_settings

ModelClient(choose_model(load_settings(model="offline"))).agent_model(lambda c: Plan(text="hi"))
print("litellm" in sys.modules)
"""


def test_importing_the_app_imports_no_model_library(tmp_path: Path) -> None:
    """They load after start-up (chat/runtime.py), so the server is up in about a second."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARS}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_APP],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.split() == ["False"] * 5
