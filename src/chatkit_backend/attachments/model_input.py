"""Attachments as the model reads them.

Images go as `input_image` parts with a data URL (no URL of ours needs to be
reachable from the provider). Text-like files, and the text of PDFs (pypdf), go as
text, cut to ATTACHMENT_TEXT_CHARS with a note saying so (a PDF's text is extracted once
and kept: extraction.py). Anything else is named with its type and size, so the model
can at least say what it was given. Images of one request share MODEL_IMAGE_BYTES_BUDGET,
newest first; the rest are named with a note.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from chatkit.types import Attachment

from .extraction import cut
from .rules import is_image, is_pdf, is_text
from .service import Attachments, size_of


def _describe(attachment: Attachment, size: int | None) -> str:
    sized = f", {size} bytes" if size is not None else ""
    return f"{attachment.name} ({attachment.mime_type}{sized})"


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
    if is_pdf(attachment.mime_type):
        # Extracted once (at upload) and kept: a replayed PDF costs one small read.
        try:
            text = await attachments.pdf_text(attachment)
        except Exception:  # deleted since (or its storage failed)
            return [
                {"type": "input_text", "text": f"[Attachment {attachment.name}: not available]"}
            ]
        header = f"[Attached file: {_describe(attachment, size_of(attachment))}]"
        return [{"type": "input_text", "text": header + text}]
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
        return [{"type": "input_text", "text": f"{header}\n{cut(text, text_chars)}"}]
    return [{"type": "input_text", "text": f"{header} (its contents cannot be read here)"}]
