"""Voice input: ChatKit's `input.transcribe`, answered by TRANSCRIPTION_MODEL.

`openai/<name>`: OpenAI's whisper-1 or gpt-4o-transcribe, or any OpenAI-compatible
`/audio/transcriptions` (a local faster-whisper or whisper.cpp server) at MODEL_API_BASE,
through the OpenAI client. Other providers (`groq/whisper-large-v3`, `mistral/voxtral-mini-latest`,
`deepgram/nova-2`, ...; the list is in transcription_models.py) go through LiteLLM's
`atranscription`. LiteLLM would otherwise open a client per provider and keep it, and its
connections, past shutdown: every call here is handed a client of its own, closed when the
call ends. The audio is never stored.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import TYPE_CHECKING

from ..agent.models import NO_KEY, prepare_litellm, provider_key
from ..config import Settings
from ..errors import ApiError, BadRequest, PayloadTooLarge, UnsupportedMediaType
from .rules import base_type
from .transcription_models import parse_transcription_model

if TYPE_CHECKING:
    from openai import AsyncOpenAI

# What the client is given: a file name (its suffix tells the provider the format), the
# bytes and their type.
Upload = tuple[str, bytes, str]

log = logging.getLogger(__name__)

# What browsers' MediaRecorder makes (ChatKit sends webm, ogg or mp4), and common files.
AUDIO_TYPES = frozenset(
    {"audio/webm", "audio/ogg", "audio/mp4", "audio/mpeg", "audio/wav", "audio/x-wav"}
)
_SUFFIX = {"audio/mpeg": "mp3", "audio/x-wav": "wav"}


class TranscriptionFailed(ApiError):
    status, title = 502, "Bad Gateway"


def decode_audio(audio_base64: str, mime_type: str, max_bytes: int) -> bytes:
    """The audio's bytes, or a 4xx for a type, encoding or size that cannot be used."""
    kind = base_type(mime_type)
    if kind not in AUDIO_TYPES:
        raise UnsupportedMediaType(
            f"Audio of type {kind or '(none)'} is not accepted. "
            f"Accepted: {', '.join(sorted(AUDIO_TYPES))}.",
            code="audio_type_not_allowed",
        )
    try:
        data = base64.b64decode(audio_base64, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("audio_base64 is not valid base64.", code="invalid_audio") from None
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"Audio is limited to {max_bytes} bytes.", code="audio_too_large")
    if not data:
        raise BadRequest("The audio is empty.", code="invalid_audio")
    return data


class Transcriber:
    def __init__(self, settings: Settings) -> None:
        assert settings.transcription_model is not None
        self.model = parse_transcription_model(settings.transcription_model)
        self.api_base = settings.model_api_base
        self.api_key, _ = provider_key(settings, self.model.model_id)
        self.timeout = settings.model_timeout_seconds

    async def transcribe(self, data: bytes, mime_type: str) -> str:
        kind = base_type(mime_type)
        upload = (f"audio.{_SUFFIX.get(kind, kind.split('/')[1])}", data, kind)
        try:
            if self.model.route == "openai":
                return await self._openai(upload)
            return await self._litellm(upload)
        except Exception as exc:
            # The provider's message may carry a URL or account detail: the log has the
            # type, the user a plain sentence.
            log.warning("transcription failed: %s", type(exc).__name__)
            raise TranscriptionFailed(
                "The transcription service failed; please try again or type instead.",
                code="transcription_failed",
            ) from None

    def _openai_client(self, base_url: str | None, api_key: str | None) -> AsyncOpenAI:
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            base_url=base_url, api_key=api_key or NO_KEY, timeout=self.timeout, max_retries=1
        )

    async def _openai(self, upload: Upload) -> str:
        async with self._openai_client(self.api_base, self.api_key) as client:
            result = await client.audio.transcriptions.create(
                model=self.model.model_id, file=upload
            )
        return result.text

    async def _litellm(self, upload: Upload) -> str:
        prepare_litellm()
        import litellm

        # Where LiteLLM would send it, and with which key (the provider's own variable,
        # GROQ_API_KEY say, when MODEL_API_KEY is not set).
        _, _, key, base = litellm.get_llm_provider(
            self.model.model_id, api_base=self.api_base, api_key=self.api_key
        )
        call = {"model": self.model.model_id, "file": upload, "timeout": self.timeout}
        call |= {"api_base": base, "api_key": key or self.api_key, "max_retries": 1}
        if self.model.own_format:
            from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

            handler = AsyncHTTPHandler(timeout=self.timeout)
            try:
                result = await litellm.atranscription(**call, client=handler)
            finally:
                await handler.close()  # type: ignore[no-untyped-call]
        else:
            async with self._openai_client(base, key or self.api_key) as client:
                result = await litellm.atranscription(**call, client=client)
        return str(result.text or "")
