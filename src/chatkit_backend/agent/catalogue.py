"""The models users may choose (MODELS, else the one MODEL picks), and the one a turn uses.

Served by GET /api/models in the shape ChatKit's `composer.models` option takes, and
checked against a turn's `inference_options.model` before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from ..config import Settings
from .models import OFFLINE, ModelChoice, choose_model, provider_key


class ModelOption(BaseModel):
    """One entry of ChatKit's `composer.models`."""

    id: str
    label: str
    default: bool


@dataclass(frozen=True)
class CatalogueEntry:
    id: str
    label: str
    choice: ModelChoice


class ModelCatalogue:
    """The configured models in order; the first is the default."""

    def __init__(self, entries: list[CatalogueEntry]) -> None:
        assert entries, "there is always at least one model (offline at worst)"
        self.entries = entries
        self._by_id = {entry.id: entry for entry in entries}

    @property
    def default(self) -> CatalogueEntry:
        return self.entries[0]

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._by_id

    def for_turn(self, requested: str | None, remembered: object) -> str:
        """The model of a turn: the one asked for, else the thread's last if still offered."""
        if requested is not None and requested in self._by_id:
            return requested
        if isinstance(remembered, str) and remembered in self._by_id:
            return remembered
        return self.default.id

    def options(self) -> list[ModelOption]:
        return [
            ModelOption(id=e.id, label=e.label, default=e is self.default) for e in self.entries
        ]


def _choice(settings: Settings, model_id: str) -> ModelChoice:
    if model_id == OFFLINE:
        return ModelChoice(OFFLINE, "listed in MODELS")
    key, variable = provider_key(settings, model_id)
    return ModelChoice(model_id, "listed in MODELS", settings.model_api_base, key, variable)


def build_catalogue(settings: Settings) -> ModelCatalogue:
    if not settings.models:
        choice = choose_model(settings)
        return ModelCatalogue([CatalogueEntry(choice.name, choice.name, choice)])
    return ModelCatalogue(
        [CatalogueEntry(m, label, _choice(settings, m)) for m, label in settings.models]
    )
