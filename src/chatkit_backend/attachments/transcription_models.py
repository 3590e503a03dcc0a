"""Which TRANSCRIPTION_MODEL values work, and which client answers each.

Kept free of imports beyond the standard library: config.py checks the setting at start-up
with it, long before LiteLLM (seconds to import) is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ..config import Settings

OPENAI_PREFIX = "openai/"
LITELLM_PREFIX = "litellm/"

# Providers whose speech-to-text LiteLLM's `atranscription` reaches. The first group
# speaks OpenAI's `/audio/transcriptions` (LiteLLM drives them with an OpenAI client);
# the second has a request format of its own (LiteLLM's HTTP handler).
# tests/test_transcription.py checks this list against the installed LiteLLM.
LITELLM_OPENAI_COMPATIBLE = (
    "openai",
    "groq",
    "fireworks_ai",
    "deepinfra",
    "together_ai",
    "hosted_vllm",
)
LITELLM_OWN_FORMAT = ("mistral", "deepgram", "elevenlabs")
LITELLM_PROVIDERS = LITELLM_OPENAI_COMPATIBLE + LITELLM_OWN_FORMAT

Route = Literal["openai", "litellm"]


@dataclass(frozen=True)
class TranscriptionModel:
    name: str  # as configured
    route: Route
    model_id: str  # what the OpenAI client or LiteLLM is given
    provider: str

    @property
    def own_format(self) -> bool:
        """LiteLLM talks to this provider in its own format, not OpenAI's."""
        return self.provider in LITELLM_OWN_FORMAT


def what_works() -> str:
    litellm_ones = ", ".join(f"{p}/<model>" for p in LITELLM_PROVIDERS if p != "openai")
    return (
        "openai/<model> (OpenAI, or any OpenAI-compatible server at MODEL_API_BASE, through "
        f"the OpenAI client), or through LiteLLM {litellm_ones} or litellm/openai/<model>; "
        "LiteLLM has no transcription for other providers (gemini/, anthropic/, ollama/, ...)"
    )


def transcribes_through_litellm(settings: Settings) -> bool:
    value = settings.transcription_model
    return value is not None and parse_transcription_model(value).route == "litellm"


def parse_transcription_model(value: str) -> TranscriptionModel:
    """The route for `value`; ValueError naming what works when there is none."""
    via_litellm = value.startswith(LITELLM_PREFIX)
    model_id = value.removeprefix(LITELLM_PREFIX)
    provider, _, name = model_id.partition("/")
    if not name.strip() or provider not in LITELLM_PROVIDERS:
        raise ValueError(f"must be {what_works()}")
    if provider == "openai" and not via_litellm:
        return TranscriptionModel(value, "openai", name, provider)
    return TranscriptionModel(value, "litellm", model_id, provider)
