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


def test_only_openai_compatible_models_are_taken() -> None:
    from chatkit_backend.config import ConfigError, load_settings

    assert load_settings(transcription_model="").transcription_model is None
    for bad in ("whisper-1", "openai/", "groq/whisper-large-v3"):
        with pytest.raises(ConfigError, match="TRANSCRIPTION_MODEL"):
            load_settings(transcription_model=bad)


async def test_without_a_model_it_is_not_enabled(database_url: str) -> None:
    from chatkit_backend.config import load_settings

    with live_server(load_settings(database_url=database_url, model="offline")) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post("/chatkit", json=transcribe(AUDIO))
    assert response.status_code == 400 and response.json()["code"] == "not_enabled"


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
