"""Voice input: ChatKit's `input.transcribe`, answered by TRANSCRIPTION_MODEL.

`openai/<name>`: OpenAI's whisper-1 or gpt-4o-transcribe, or any OpenAI-compatible
`/audio/transcriptions` (Groq, a local faster-whisper or whisper.cpp server) at
MODEL_API_BASE, through the OpenAI client. (LiteLLM's transcription route keeps
connections open past shutdown, so it is not used.) The audio is never stored.
"""

from __future__ import annotations

import base64
import binascii
import logging

from ..config import Settings
from ..errors import ApiError, BadRequest, PayloadTooLarge, UnsupportedMediaType
from .rules import base_type

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
        self.model = settings.transcription_model
        self.api_base = settings.model_api_base
        self.api_key = settings.model_api_key or settings.openai_api_key
        self.timeout = settings.model_timeout_seconds

    async def transcribe(self, data: bytes, mime_type: str) -> str:
        kind = base_type(mime_type)
        upload = (f"audio.{_SUFFIX.get(kind, kind.split('/')[1])}", data, kind)
        try:
            from openai import AsyncOpenAI

            async with AsyncOpenAI(
                base_url=self.api_base,
                api_key=self.api_key or "unset",
                timeout=self.timeout,
                max_retries=1,
            ) as client:
                result = await client.audio.transcriptions.create(
                    model=self.model.removeprefix("openai/"), file=upload
                )
            return result.text
        except Exception as exc:
            # The provider's message may carry a URL or account detail: the log has the
            # type, the user a plain sentence.
            log.warning("transcription failed: %s", type(exc).__name__)
            raise TranscriptionFailed(
                "The transcription service failed; please try again or type instead.",
                code="transcription_failed",
            ) from None
