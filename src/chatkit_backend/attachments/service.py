"""Attachments as the ChatKit server sees them: create, receive bytes, read, delete.

Metadata is the SDK's Attachment model in the `attachments` table (chat/store.py), its
integration-only `metadata` holding what the protocol has no field for: the declared
`size` and whether the bytes have `uploaded`. The bytes go to the BlobStorage.
"""

from __future__ import annotations

from typing import Any

from chatkit.store import AttachmentStore
from chatkit.types import (
    Attachment,
    AttachmentCreateParams,
    AttachmentUploadDescriptor,
    FileAttachment,
    ImageAttachment,
)
from pydantic import AnyUrl, TypeAdapter
from sqlalchemy import select, update

from ..chat.store import SQLStore, new_id
from ..chat.tables import DELETING, UPLOADING, AttachmentRow
from ..context import RequestContext
from . import records
from .blobs import BlobStorage
from .extraction import pdf_for_model
from .records import not_found
from .rules import UploadRules, base_type, is_image, is_pdf, size_mismatch
from .signing import PREVIEW_SECONDS, UPLOAD_SECONDS, UrlSigner

_adapter: TypeAdapter[Attachment] = TypeAdapter(Attachment)

# What preview URLs point at before a request gives the server its address.
_NO_BASE = "http://localhost/"


def size_of(attachment: Attachment) -> int | None:
    value = (attachment.metadata or {}).get("size")
    return value if isinstance(value, int) else None


def is_uploaded(attachment: Attachment) -> bool:
    return bool((attachment.metadata or {}).get("uploaded"))


class Attachments(AttachmentStore[RequestContext]):
    def __init__(
        self,
        store: SQLStore,
        blobs: BlobStorage,
        rules: UploadRules,
        signer: UrlSigner,
        text_chars: int = 20_000,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.rules = rules
        self.signer = signer
        # ATTACHMENT_TEXT_CHARS: the budget a PDF's kept text is cut to.
        self.text_chars = text_chars

    def _new(
        self, name: str, mime_type: str, size: int, context: RequestContext, *, uploaded: bool
    ) -> Attachment:
        attachment_id = new_id("attachment")
        common: dict[str, Any] = {
            "id": attachment_id,
            "name": name,
            "mime_type": base_type(mime_type),
            "metadata": {"size": size, "uploaded": uploaded},
        }
        if not uploaded:
            common["upload_descriptor"] = AttachmentUploadDescriptor(
                url=AnyUrl(
                    self.signer.url(
                        context.base_url or _NO_BASE,
                        "upload",
                        attachment_id,
                        context.user_id,
                        UPLOAD_SECONDS,
                    )
                ),
                method="POST",
            )
        if is_image(mime_type):
            return ImageAttachment(preview_url=self.preview_url(attachment_id, context), **common)
        return FileAttachment(**common)

    def preview_url(self, attachment_id: str, context: RequestContext) -> AnyUrl:
        return AnyUrl(
            self.signer.url(
                context.base_url or _NO_BASE,
                "content",
                attachment_id,
                context.user_id,
                PREVIEW_SECONDS,
            )
        )

    def fresh(self, attachment: Attachment, context: RequestContext) -> Attachment:
        """The attachment as shown to its owner now: an image gets a new preview URL
        (the stored one has long expired)."""
        if isinstance(attachment, ImageAttachment):
            return attachment.model_copy(
                update={"preview_url": self.preview_url(attachment.id, context)}
            )
        return attachment

    # two-phase: attachments.create, then bytes to the upload URL -------------

    async def create_attachment(
        self, input: AttachmentCreateParams, context: RequestContext
    ) -> Attachment:
        # (The SDK's server saves what this returns.)
        self.rules.check_declared(input.name, input.size, input.mime_type)
        return self._new(input.name, input.mime_type, input.size, context, uploaded=False)

    async def signed(
        self, attachment_id: str, purpose: str, expires: int, signature: str
    ) -> tuple[Attachment, RequestContext]:
        """The attachment a signed URL names, with its owner's context; a URL signed for
        another purpose, owner or attachment, or expired, is a 404 like a missing one."""
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(AttachmentRow.data, AttachmentRow.user_id).where(
                        AttachmentRow.id == attachment_id,
                        AttachmentRow.state != DELETING,
                    )
                )
            ).first()
        if row is None or not self.signer.valid(
            purpose, attachment_id, row.user_id, expires, signature
        ):
            raise not_found(attachment_id)
        return _adapter.validate_json(row.data), RequestContext(user_id=row.user_id)

    async def store_upload(
        self, attachment: Attachment, data: bytes, context: RequestContext
    ) -> Attachment:
        """Keep the uploaded bytes of a created attachment; they must be what was declared.

        The record is claimed (pending -> uploading) before a byte is written, so of two
        uploads racing for it one gets 409; a delete that wins meanwhile takes the bytes
        back out (records.py)."""
        declared = size_of(attachment)
        if declared is not None and len(data) != declared:
            raise size_mismatch(declared, len(data))
        self.rules.check_bytes(data, attachment.mime_type)
        await records.claim_upload(self.store, attachment.id, context.user_id)
        done = attachment.model_copy(
            update={
                "upload_descriptor": None,
                "metadata": {**(attachment.metadata or {}), "uploaded": True},
            }
        )
        await self._put_claimed(done, data, context)
        await self._extract(done, data)
        return done

    async def _put_claimed(self, attachment: Attachment, data: bytes, ctx: RequestContext) -> None:
        try:
            await self.blobs.put(attachment.id, data)
        except BaseException:
            await records.release_upload(self.store, attachment.id, ctx.user_id)
            raise
        if not await records.finish_upload(self.store, attachment, ctx.user_id):
            # Deleted while the bytes were on their way: they go too.
            await self.blobs.delete([attachment.id])
            raise not_found(attachment.id)

    # direct: one multipart POST ------------------------------------------

    async def create_uploaded(
        self, name: str, mime_type: str, data: bytes, context: RequestContext
    ) -> Attachment:
        self.rules.check_declared(name, len(data), mime_type)
        attachment = self._new(name, mime_type, len(data), context, uploaded=True)
        self.rules.check_bytes(data, attachment.mime_type)
        # The record first (uploading), so bytes never exist without one.
        await self.store.save_attachment(attachment, context, state=UPLOADING)
        await self._put_claimed(attachment, data, context)
        await self._extract(attachment, data)
        return attachment

    # what the model reads of a PDF, extracted once -----------------------

    async def _extract(self, attachment: Attachment, data: bytes) -> str | None:
        """At upload completion: the upload answers once the text is kept, so no turn
        waits for it."""
        if not is_pdf(attachment.mime_type):
            return None
        text = await pdf_for_model(data, self.text_chars)
        async with self.store._write() as conn:
            await conn.execute(
                update(AttachmentRow)
                .where(AttachmentRow.id == attachment.id, AttachmentRow.extracted_text.is_(None))
                .values(extracted_text=text)
            )
        return text

    async def pdf_text(self, attachment: Attachment) -> str:
        """What the model reads after a PDF's header: kept at upload, or extracted now
        (and kept) for one uploaded before texts were kept."""
        async with self.store.engine.connect() as conn:
            kept = await conn.scalar(
                select(AttachmentRow.extracted_text).where(AttachmentRow.id == attachment.id)
            )
        if kept is not None:
            return str(kept)
        text = await self._extract(attachment, await self.content(attachment))
        return text or ""

    # reading and deleting -------------------------------------------------

    async def content(self, attachment: Attachment) -> bytes:
        data = await self.blobs.get(attachment.id) if is_uploaded(attachment) else None
        if data is None:
            raise not_found(attachment.id)
        return data

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        # Ownership and state in one step: another user's id is a 404 and its bytes stay;
        # one already sent in a message is a 409.
        await records.mark_deleting(self.store, attachment_id, context.user_id)
        await records.remove_deleted(self.store.engine, self.blobs, [attachment_id])
