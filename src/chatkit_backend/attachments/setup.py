"""Attachments as the settings make them: storage, rules, URL signing, wired to the store."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from ..chat.store import SQLStore
from ..config import Settings
from .blobs import open_blobs
from .rules import DEFAULT_TYPES, UploadRules
from .service import Attachments
from .signing import UrlSigner

log = logging.getLogger(__name__)


def rules_from(settings: Settings) -> UploadRules:
    return UploadRules(
        max_bytes=settings.attachment_max_bytes,
        types=frozenset(settings.attachment_types or DEFAULT_TYPES),
        max_per_message=settings.max_attachments_per_message,
    )


def open_attachments(settings: Settings, engine: AsyncEngine, store: SQLStore) -> Attachments:
    blobs = open_blobs(settings.attachments_url, engine, settings.attachments_s3_endpoint)
    signer = UrlSigner(settings.attachment_url_secret or settings.jwt_secret)
    if not signer.shared and not settings.async_database_url.startswith("sqlite"):
        # One PostgreSQL usually means several instances (or workers): each would sign
        # with its own key, and upload and preview URLs would 404 on the others.
        log.warning(
            "attachments: no ATTACHMENT_URL_SECRET (or BETTER_AUTH_SECRET): signed upload and "
            "preview URLs work only on the process that made them; set one shared secret"
        )
    attachments = Attachments(
        store, blobs, rules_from(settings), signer, settings.attachment_text_chars
    )
    store.blobs = blobs
    store.present = attachments.fresh
    store.attachment_link = lambda attachment_id, ctx: str(
        attachments.preview_url(attachment_id, ctx)
    )
    return attachments
