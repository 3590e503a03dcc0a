"""Attachments as the model reads them.

Images go as `input_image` parts with a data URL (no URL of ours needs to be
reachable from the provider). Text-like files, and the text of PDFs (pypdf), go as
text, cut to ATTACHMENT_TEXT_CHARS with a note saying so. Anything else is named with its type
and size, so the model can at least say what it was given. Images of one request share
MODEL_IMAGE_BYTES_BUDGET, newest first; the rest are named with a note.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from collections.abc import Iterable
from typing import Any

from chatkit.types import Attachment

from .rules import is_image, is_text
from .service import Attachments, size_of

log = logging.getLogger(__name__)

# Pages of a PDF read at most: the text budget is reached long before on real documents,
# and a crafted PDF of many empty pages should not cost more.
MAX_PDF_PAGES = 50

CUT_NOTE = "\n[cut: the file has {} more characters the model was not shown]"


def _describe(attachment: Attachment, size: int | None) -> str:
    sized = f", {size} bytes" if size is not None else ""
    return f"{attachment.name} ({attachment.mime_type}{sized})"


def pdf_text(data: bytes, max_chars: int) -> str | None:
    """The text of a PDF's pages up to about `max_chars`, or None when it cannot be read."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        pages: list[str] = []
        length = 0
        for page in reader.pages[:MAX_PDF_PAGES]:
            text = page.extract_text() or ""
            pages.append(text)
            length += len(text)
            if length > max_chars:
                break
        return "\n\n".join(pages)
    except Exception as exc:
        # Any failure of the extractor on a hostile or broken file (pypdf raises
        # AssertionError, RecursionError, IndexError... too) names the file instead of
        # failing this turn and every later one that replays it.
        log.info("a PDF attachment could not be read: %s", type(exc).__name__)
        return None


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + CUT_NOTE.format(len(text) - max_chars)


def images_within_budget(newest_first: Iterable[Attachment], budget: int) -> set[str]:
    """The ids of the images one model request shows: newest first while their bytes fit
    in `budget` (MODEL_IMAGE_BYTES_BUDGET). Ten 20 MiB images, or the same images replayed
    on every later turn, would pass what providers accept in one request."""
    shown: set[str] = set()
    used = 0
    for attachment in newest_first:
        if not is_image(attachment.mime_type) or attachment.id in shown:
            continue
        size = size_of(attachment) or 0
        if used + size <= budget:
            shown.add(attachment.id)
            used += size
    return shown


def over_budget_note(attachment: Attachment) -> list[dict[str, Any]]:
    return [
        {
            "type": "input_text",
            "text": f"[Attached image {_describe(attachment, size_of(attachment))} not shown: "
            "over the per-request image budget]",
        }
    ]


async def attachment_parts(
    attachment: Attachment, attachments: Attachments, text_chars: int, *, show_image: bool = True
) -> list[dict[str, Any]]:
    """The content parts of one attachment; an image not to be shown is named instead."""
    if is_image(attachment.mime_type) and not show_image:
        return over_budget_note(attachment)
    try:
        data = await attachments.content(attachment)
    except Exception:  # deleted since (or its storage failed): say so, don't fail the turn
        return [{"type": "input_text", "text": f"[Attachment {attachment.name}: not available]"}]
    if is_image(attachment.mime_type):
        encoded = base64.b64encode(data).decode("ascii")
        return [
            {"type": "input_text", "text": f"[Attached image: {_describe(attachment, len(data))}]"},
            {
                "type": "input_image",
                "image_url": f"data:{attachment.mime_type};base64,{encoded}",
                "detail": "auto",
            },
        ]
    header = f"[Attached file: {_describe(attachment, size_of(attachment) or len(data))}]"
    if is_text(attachment.mime_type):
        text = data.decode("utf-8", "replace")
        return [{"type": "input_text", "text": f"{header}\n{_cut(text, text_chars)}"}]
    if attachment.mime_type == "application/pdf":
        extracted = await asyncio.to_thread(pdf_text, data, text_chars)
        if extracted is not None and extracted.strip():
            return [{"type": "input_text", "text": f"{header}\n{_cut(extracted, text_chars)}"}]
        return [{"type": "input_text", "text": f"{header} (no text could be read from it)"}]
    return [{"type": "input_text", "text": f"{header} (its contents cannot be read here)"}]
