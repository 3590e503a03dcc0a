"""GET /api/models: the models users may pick, for ChatKit's `composer.models` option."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from ..auth import current_context
from ..context import RequestContext
from .catalogue import ModelCatalogue, ModelOption

router = APIRouter(tags=["models"])


def get_catalogue(request: Request) -> ModelCatalogue:
    catalogue: ModelCatalogue = request.app.state.catalogue
    return catalogue


@router.get("/api/models")
async def list_models(
    _ctx: Annotated[RequestContext, Depends(current_context)],
    catalogue: Annotated[ModelCatalogue, Depends(get_catalogue)],
) -> list[ModelOption]:
    """The configured models in order (MODELS), the default first and marked `default`.

    The list is ChatKit's `composer.models` as is; a message picks one with
    `inference_options.model`, and a thread keeps its last model for follow-ups.
    """
    return catalogue.options()
