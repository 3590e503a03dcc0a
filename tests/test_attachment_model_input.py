"""What the model is given for each kind of attachment."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.attachments.blobs import DatabaseBlobs
from chatkit_backend.attachments.extraction import pdf_for_model, pdf_text
from chatkit_backend.attachments.model_input import attachment_parts
from chatkit_backend.attachments.rules import DEFAULT_TYPES, UploadRules
from chatkit_backend.attachments.service import Attachments
from chatkit_backend.attachments.signing import UrlSigner
from chatkit_backend.chat.store import SQLStore
from chatkit_backend.chat.tables import AttachmentRow
from chatkit_backend.context import RequestContext
from chatkit_backend.errors import NotFound

from .pdfs import text_pdf

CTX = RequestContext(user_id="u1", base_url="http://testserver/")
RULES = UploadRules(max_bytes=1 << 20, types=frozenset(DEFAULT_TYPES), max_per_message=10)


def service(engine: AsyncEngine) -> Attachments:
    return Attachments(SQLStore(engine), DatabaseBlobs(engine), RULES, UrlSigner("k"))


async def test_each_kind_as_the_model_reads_it(engine: AsyncEngine) -> None:
    attachments = service(engine)
    png = await attachments.create_uploaded("p.png", "image/png", b"\x89PNG\r\n\x1a\nxx", CTX)
    image = await attachment_parts(png, attachments, 100)
    assert image[1]["type"] == "input_image"
    assert image[1]["image_url"].startswith("data:image/png;base64,iVBORw0KGgp4eA")
    assert "p.png (image/png, 10 bytes)" in image[0]["text"]

    long = await attachments.create_uploaded("l.csv", "text/csv", b"a,b\n" + b"x" * 500, CTX)
    (cut,) = await attachment_parts(long, attachments, 100)
    assert cut["text"].startswith("[Attached file: l.csv (text/csv, 504 bytes)]\na,b\n")
    assert cut["text"].endswith("[cut: the file has 404 more characters the model was not shown]")

    pdf = await attachments.create_uploaded(
        "r.pdf", "application/pdf", text_pdf("Hello from a PDF"), CTX
    )
    (read,) = await attachment_parts(pdf, attachments, 1000)
    assert "r.pdf (application/pdf" in read["text"] and "Hello from a PDF" in read["text"]

    broken = await attachments.create_uploaded("b.pdf", "application/pdf", b"%PDF-1.4 junk", CTX)
    (unread,) = await attachment_parts(broken, attachments, 1000)
    assert unread["text"].endswith("(no text could be read from it)")

    doc = await attachments.create_uploaded("d.doc", "application/msword", b"\xd0\xcf\x11", CTX)
    (named,) = await attachment_parts(doc, attachments, 1000)
    assert named["text"] == (
        "[Attached file: d.doc (application/msword, 3 bytes)] (its contents cannot be read here)"
    )

    await attachments.blobs.delete([doc.id])
    (gone,) = await attachment_parts(doc, attachments, 1000)
    assert gone["text"] == "[Attachment d.doc: not available]"


async def test_only_the_owner_deletes(engine: AsyncEngine) -> None:
    attachments = service(engine)
    mine = await attachments.create_uploaded("a.txt", "text/plain", b"abc", CTX)
    with pytest.raises(NotFound):
        await attachments.delete_attachment(mine.id, RequestContext(user_id="u2"))
    assert await attachments.blobs.get(mine.id) == b"abc"
    await attachments.delete_attachment(mine.id, CTX)
    assert await attachments.blobs.get(mine.id) is None


def test_pdf_text_stops_reading_past_the_budget() -> None:
    assert pdf_text(text_pdf("Page text"), 3) == "Page text"
    assert pdf_text(b"not a pdf", 100) is None


async def test_a_pdf_not_read_in_time_is_named_with_a_note() -> None:
    # No time at all: the worker thread cannot have answered yet.
    assert await pdf_for_model(text_pdf("Slow"), 1000, seconds=0) == (
        " (its text could not be read within 0 seconds)"
    )
    assert await pdf_for_model(text_pdf("Quick"), 1000) == "\nQuick"


async def test_a_pdf_uploaded_before_texts_were_kept_is_read_once_on_first_use(
    engine: AsyncEngine,
) -> None:
    attachments = service(engine)
    pdf = await attachments.create_uploaded("o.pdf", "application/pdf", text_pdf("Older"), CTX)
    async with engine.begin() as conn:  # as a row from before migration 0008
        await conn.execute(
            update(AttachmentRow).where(AttachmentRow.id == pdf.id).values(extracted_text=None)
        )
    (read,) = await attachment_parts(pdf, attachments, 1000)
    assert read["text"].endswith("]\nOlder")
    async with engine.connect() as conn:
        kept = await conn.scalar(
            select(AttachmentRow.extracted_text).where(AttachmentRow.id == pdf.id)
        )
    assert kept == "\nOlder"
