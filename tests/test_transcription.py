"""Voice input: input.transcribe through TRANSCRIPTION_MODEL, against the scripted provider."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import scripted_settings
from .live import ChatKitClient, live_server
from .scripted_provider import ScriptedProvider

AUDIO = b"\x1aE\xdf\xa3" + b"opus-frames" * 20  # a WebM header and some bytes


def transcribe(audio: bytes | str, mime_type: str = "audio/webm;codecs=opus") -> dict[str, Any]:
    encoded = audio if isinstance(audio, str) else base64.b64encode(audio).decode()
    return {"type": "input.transcribe", "params": {"audio_base64": encoded, "mime_type": mime_type}}


@pytest.fixture
def server_url(database_url: str, provider: ScriptedProvider) -> Iterator[str]:
    settings = scripted_settings(
        database_url, provider, transcription_model="openai/whisper-1", attachment_max_bytes=1000
    )
    with live_server(settings) as url:
        yield url


async def test_the_transcript_comes_back_and_the_audio_reached_the_provider(
    client: ChatKitClient, provider: ScriptedProvider
) -> None:
    provider.transcript = "add milk to my list"
    response = await client.post(transcribe(AUDIO))
    assert response.status_code == 200, response.text
    assert response.json() == {"text": "add milk to my list"}
    (sent,) = provider.transcriptions
    assert AUDIO in sent and b"whisper-1" in sent and b"audio/webm" in sent


async def test_features_say_transcription_is_on(client: ChatKitClient) -> None:
    response = await client.http.get("/api/features")
    assert response.status_code == 200, response.text
    assert response.json() == {"transcription": True}


async def test_bad_audio_is_a_clear_4xx(client: ChatKitClient, provider: ScriptedProvider) -> None:
    cases = [
        (transcribe(AUDIO, "video/mp4"), 415, "audio_type_not_allowed"),
        (transcribe("not base64!"), 400, "invalid_audio"),
        (transcribe(b""), 400, "invalid_audio"),
        (transcribe(b"x" * 1001), 413, "audio_too_large"),
    ]
    for body, status, code in cases:
        response = await client.post(body)
        assert (response.status_code, response.json().get("code")) == (status, code), response.text
    assert provider.transcriptions == []


def test_only_models_with_a_transcription_route_are_taken() -> None:
    from chatkit_backend.config import ConfigError, load_settings

    assert load_settings(transcription_model="").transcription_model is None
    for good in ("openai/whisper-1", "groq/whisper-large-v3", "litellm/openai/whisper-1"):
        assert load_settings(transcription_model=good).transcription_model == good
    for bad in ("whisper-1", "openai/", "groq/", "gemini/gemini-2.5-flash", "litellm/gemini/x"):
        with pytest.raises(ConfigError, match="TRANSCRIPTION_MODEL") as refused:
            load_settings(transcription_model=bad)
        # The refusal says what would work.
        assert "groq/<model>" in str(refused.value) and "gemini/" in str(refused.value)


def test_the_litellm_providers_are_ones_litellm_transcribes_for() -> None:
    """The allowlist against the installed LiteLLM: each provider is one LiteLLM routes
    transcriptions to, in the way the transcriber hands it a client; gemini is not."""
    import litellm
    from litellm.types.utils import LlmProviders
    from litellm.utils import ProviderConfigManager

    from chatkit_backend.attachments.transcription_models import (
        LITELLM_OPENAI_COMPATIBLE,
        LITELLM_OWN_FORMAT,
    )

    def own_config(provider: str) -> object:
        return ProviderConfigManager.get_provider_audio_transcription_config(
            model="m", provider=LlmProviders(provider)
        )

    openai_route = {"openai", *litellm.openai_compatible_providers}
    for provider in LITELLM_OPENAI_COMPATIBLE:
        assert litellm.get_llm_provider(f"{provider}/m", api_base="http://h/v1")[1] == provider
        assert provider in openai_route, provider
    for provider in LITELLM_OWN_FORMAT:
        assert litellm.get_llm_provider(f"{provider}/m")[1] == provider
        assert provider not in openai_route and own_config(provider) is not None, provider
    assert "gemini" not in openai_route and own_config("gemini") is None


@pytest.mark.parametrize(
    ("model", "sent_model"),
    [
        # LiteLLM with an OpenAI client of the transcriber's own
        ("groq/whisper-large-v3", b"whisper-large-v3"),
        ("litellm/openai/whisper-1", b"whisper-1"),
        # LiteLLM's own HTTP handler, with a client of the transcriber's own
        ("mistral/voxtral-mini-latest", b"voxtral-mini-latest"),
    ],
)
async def test_through_litellm_the_transcript_comes_back(
    database_url: str, provider: ScriptedProvider, model: str, sent_model: bytes
) -> None:
    """Through LiteLLM at MODEL_API_BASE; twice, so a client that was closed after the first
    call and reused would show, and the server's shutdown (ResourceWarning is an error in
    the tests) shows any connection left open."""
    provider.transcript = "call the plumber"
    settings = scripted_settings(database_url, provider, transcription_model=model)
    with live_server(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            for _ in range(2):
                response = await http.post("/chatkit", json=transcribe(AUDIO))
                assert response.status_code == 200, response.text
                assert response.json() == {"text": "call the plumber"}
    assert len(provider.transcriptions) == 2
    for sent in provider.transcriptions:
        # The file name tells the provider the format (LiteLLM's own-format route types
        # the part from it).
        assert AUDIO in sent and sent_model in sent and b'filename="audio.webm"' in sent


async def test_a_failing_service_through_litellm_is_a_502_without_details(
    database_url: str,
) -> None:
    from chatkit_backend.config import load_settings

    settings = load_settings(
        database_url=database_url,
        model="offline",
        transcription_model="groq/whisper-large-v3",
        model_api_base="http://127.0.0.1:9/v1",
    )
    with live_server(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            response = await http.post("/chatkit", json=transcribe(AUDIO))
    assert response.status_code == 502
    assert response.json()["code"] == "transcription_failed"
    assert "127.0.0.1" not in response.text


async def test_without_a_model_it_is_not_enabled(database_url: str) -> None:
    from chatkit_backend.config import load_settings

    with live_server(load_settings(database_url=database_url, model="offline")) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post("/chatkit", json=transcribe(AUDIO))
            features = await http.get("/api/features")
    assert response.status_code == 400 and response.json()["code"] == "not_enabled"
    assert features.json() == {"transcription": False}


async def test_a_failing_service_is_a_502_without_details(database_url: str) -> None:
    from chatkit_backend.config import load_settings

    settings = load_settings(
        database_url=database_url,
        model="offline",
        transcription_model="openai/whisper-1",
        model_api_base="http://127.0.0.1:9/v1",
    )
    with live_server(settings) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post("/chatkit", json=transcribe(AUDIO))
    assert response.status_code == 502
    assert response.json()["code"] == "transcription_failed"
    assert "127.0.0.1" not in response.text
