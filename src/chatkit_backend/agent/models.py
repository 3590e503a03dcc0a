"""MODEL -> the Agents SDK model that answers: a LiteLLM model or the offline one."""

from __future__ import annotations

import os
from dataclasses import dataclass

from agents import Model

from ..config import Settings
from .offline import OfflineModel, Planner

OFFLINE = "offline"


@dataclass(frozen=True)
class ModelChoice:
    """The model in use, and why it was chosen (logged at start)."""

    name: str
    reason: str
    api_base: str | None = None
    api_key: str | None = None

    @property
    def is_offline(self) -> bool:
        return self.name == OFFLINE


def _provider_key(settings: Settings, model: str) -> str | None:
    if settings.model_api_key:
        return settings.model_api_key
    provider = model.split("/", 1)[0]
    return {
        "gemini": settings.gemini_api_key,
        "openai": settings.openai_api_key,
        "anthropic": settings.anthropic_api_key,
    }.get(provider)


def choose_model(settings: Settings) -> ModelChoice:
    """Pick the model: MODEL if set, else the first provider with a key, else offline."""
    if settings.model:
        if settings.model == OFFLINE:
            return ModelChoice(OFFLINE, "MODEL=offline")
        return ModelChoice(
            settings.model,
            "MODEL is set",
            settings.model_api_base,
            _provider_key(settings, settings.model),
        )
    candidates = [
        (settings.gemini_api_key, f"gemini/{settings.gemini_model}", "GEMINI_API_KEY is set"),
        (settings.openai_api_key, "openai/gpt-4o-mini", "OPENAI_API_KEY is set"),
        (settings.anthropic_api_key, "anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY is set"),
    ]
    for key, name, reason in candidates:
        if key:
            return ModelChoice(name, reason, settings.model_api_base, key)
    return ModelChoice(OFFLINE, "no MODEL and no provider API key")


def prepare_litellm() -> None:
    """Keep LiteLLM off the network at import (it fetches a cost map otherwise)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def build_model(choice: ModelChoice, planner: Planner) -> Model:
    """Instantiate the chosen model. LiteLLM (about 3 s to import) is imported only here."""
    if choice.is_offline:
        return OfflineModel(planner)
    prepare_litellm()
    from agents.extensions.models.litellm_model import LitellmModel

    return LitellmModel(model=choice.name, base_url=choice.api_base, api_key=choice.api_key)
