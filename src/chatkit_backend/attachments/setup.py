"""Attachments as the settings make them: storage, rules, URL signing, wired to the store."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from ..chat.store import SQLStore
from ..config import Settings
from .blobs import open_blobs
from .rules import DEFAULT_TYPES, UploadRules
from .service import Attachments
from .signing import UrlSigner


def rules_from(settings: Settings) -> UploadRules:
    return UploadRules(
        max_bytes=settings.attachment_max_bytes,
        types=frozenset(settings.attachment_types or DEFAULT_TYPES),
        max_per_message=settings.max_attachments_per_message,
    )


def open_attachments(settings: Settings, engine: AsyncEngine, store: SQLStore) -> Attachments:
    blobs = open_blobs(settings.attachments_url, engine, settings.attachments_s3_endpoint)
    attachments = Attachments(
        store,
        blobs,
        rules_from(settings),
        UrlSigner(settings.attachment_url_secret or settings.jwt_secret),
    )
    store.blobs = blobs
    store.present = attachments.fresh
    store.attachment_link = lambda attachment_id, ctx: str(
        attachments.preview_url(attachment_id, ctx)
    )
    return attachments
