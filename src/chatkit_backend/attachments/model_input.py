"""Attachments as the model reads them.

Images go as `input_image` parts with a data URL (no URL of ours needs to be
reachable from the provider). Text-like files go as text, cut to
ATTACHMENT_TEXT_CHARS with a note saying so. Anything else is named with its type
and size, so the model can at least say what it was given.
"""

from __future__ import annotations

import base64
from typing import Any

from chatkit.types import Attachment

from .rules import is_image, is_text
from .service import Attachments, size_of

CUT_NOTE = "\n[cut: the file has {} more characters the model was not shown]"


def _describe(attachment: Attachment, size: int | None) -> str:
    sized = f", {size} bytes" if size is not None else ""
    return f"{attachment.name} ({attachment.mime_type}{sized})"


async def attachment_parts(
    attachment: Attachment, attachments: Attachments, text_chars: int
) -> list[dict[str, Any]]:
    """The content parts of one attachment."""
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
        shown = text[:text_chars]
        if len(text) > text_chars:
            shown += CUT_NOTE.format(len(text) - text_chars)
        return [{"type": "input_text", "text": f"{header}\n{shown}"}]
    return [{"type": "input_text", "text": f"{header} (its contents cannot be read here)"}]
