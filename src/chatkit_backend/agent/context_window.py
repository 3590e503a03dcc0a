"""How many tokens of thread history a model is sent: HISTORY_TOKENS, or a share of its window.

A model's context window comes from the model map LiteLLM ships
(`model_prices_and_context_window_backup.json`), read as a file: importing LiteLLM
takes about 3 s, and the OpenAI and offline routes never need it. Reading the shipped
copy also keeps the lookup offline, whatever LITELLM_LOCAL_MODEL_COST_MAP says.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

from ..config import Settings
from .models import ModelChoice

log = logging.getLogger(__name__)

# The share of a known context window thread history may fill: the rest is left for the
# instructions, the tool definitions, this turn's tool calls and the reply, and for
# the error of the token estimate (chat/history_budget.py).
HISTORY_SHARE = 0.5
# For a model LiteLLM does not know (a local server's, the offline model): small
# enough for the 32k windows common among local models, even at half of it.
DEFAULT_HISTORY_TOKENS = 16_000
MODEL_MAP = "model_prices_and_context_window_backup.json"


@cache
def _model_map() -> dict[str, Any]:
    """LiteLLM's shipped model map, without importing LiteLLM; {} if it cannot be read."""
    spec = importlib.util.find_spec("litellm")
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        return {}
    try:
        data = json.loads((Path(next(iter(locations))) / MODEL_MAP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("cannot read LiteLLM's model map: history gets the default token budget")
        return {}
    return data if isinstance(data, dict) else {}


def context_window(model_id: str, model_map: dict[str, Any] | None = None) -> int | None:
    """The input tokens `model_id` (as LiteLLM or the OpenAI client is given it) accepts.

    The map keys some models with their provider (`gemini/gemini-2.5-flash`), others
    without (`claude-sonnet-4-5`), so both spellings are tried.
    """
    entries = _model_map() if model_map is None else model_map
    for key in (model_id, model_id.split("/", 1)[-1]):
        entry = entries.get(key)
        if not isinstance(entry, dict):
            continue
        for field in ("max_input_tokens", "max_tokens"):
            value = entry.get(field)
            if isinstance(value, int) and value > 0:
                return value
    return None


def history_token_budget(settings: Settings, choice: ModelChoice) -> int:
    """The history budget of `choice`: HISTORY_TOKENS if set, else a share of its window."""
    if settings.history_tokens is not None:
        return settings.history_tokens
    window = None if choice.is_offline else context_window(choice.model_id)
    if window is None:
        return DEFAULT_HISTORY_TOKENS
    return int(window * HISTORY_SHARE)
