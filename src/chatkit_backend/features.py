"""GET /api/features: what this server has switched on, for clients that adapt their UI.

The built-in page shows its microphone only when `transcription` is true; a ChatKit
frontend can set `composer.dictation.enabled` from it the same way.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from .auth import current_context
from .config import Settings
from .context import RequestContext
from .deps import get_settings

router = APIRouter(tags=["features"])


class Features(BaseModel):
    transcription: bool = Field(
        description="`input.transcribe` works (TRANSCRIPTION_MODEL is set): offer dictation."
    )


@router.get("/api/features")
async def features(
    _ctx: Annotated[RequestContext, Depends(current_context)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> Features:
    """The optional features this server offers."""
    return Features(transcription=settings.transcription_model is not None)
