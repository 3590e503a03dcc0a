"""Thread titles: asked of the model beside the reply, or derived from the first message."""

from __future__ import annotations

import logging
import re

from ..text_rules import as_name
from .models import ModelClient

log = logging.getLogger(__name__)

TITLE_MAX_CHARS = 60
# Scripted test providers recognise title requests by this marker.
TITLE_PROMPT = (
    "You write titles for chat threads. Reply with a title of at most six words for "
    "the conversation that starts with the user's message. No quotes, no punctuation "
    "at the end, nothing else."
)


def derive_title(text: str) -> str:
    """A title from the first user message: its first line, whitespace tidied, shortened."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "").strip()
    line = as_name(re.sub(r"\s+", " ", line)).strip()
    if not line:
        return "New chat"
    title = line[0].upper() + line[1:]
    if len(title) > TITLE_MAX_CHARS:
        title = title[: TITLE_MAX_CHARS - 1].rsplit(" ", 1)[0].rstrip(",.;:") + "…"
    return title


def _clean(raw: str) -> str:
    title = raw.strip().splitlines()[0] if raw.strip() else ""
    title = as_name(title)
    title = title.strip().strip("\"'`*#").strip().rstrip(".")
    return title[:TITLE_MAX_CHARS]


async def generate_title(client: ModelClient, first_message: str) -> str:
    """Ask the model for a short title; fall back to `derive_title` on any failure."""
    fallback = derive_title(first_message)
    if client.choice.is_offline:
        return fallback
    try:
        raw = await client.complete(
            [
                {"role": "system", "content": TITLE_PROMPT},
                {"role": "user", "content": first_message[:2000]},
            ],
            max_tokens=24,
            request_timeout=15,
        )
    except Exception as exc:  # a title is never worth failing a turn for
        log.warning("title generation failed: %s", type(exc).__name__)
        return fallback
    return _clean(raw) or fallback
