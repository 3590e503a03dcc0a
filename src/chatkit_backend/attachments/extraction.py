"""A PDF's text as the model reads it, extracted once and off the event loop.

pypdf is pure Python: a long or hostile PDF can take seconds of CPU. Extraction runs in
a worker thread (the event loop keeps serving) under a time limit, once per attachment
(attachments/service.py keeps the result in the record), and what is kept is already
cut to ATTACHMENT_TEXT_CHARS, or the note saying why there is no text. A thread cannot
be stopped: one past its time limit finishes in the background, bounded by
MAX_PDF_PAGES, and its result is dropped.
"""

from __future__ import annotations

import asyncio
import io
import logging

log = logging.getLogger(__name__)

# Pages of a PDF read at most: the text budget is reached long before on real documents,
# and a crafted PDF of many empty pages should not cost more.
MAX_PDF_PAGES = 50
# Seconds an extraction may take before the PDF is named without its text.
EXTRACT_SECONDS = 15.0

CUT_NOTE = "\n[cut: the file has {} more characters the model was not shown]"
NO_TEXT = " (no text could be read from it)"
TOO_SLOW = " (its text could not be read within {:g} seconds)"


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


def cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + CUT_NOTE.format(len(text) - max_chars)


async def pdf_for_model(data: bytes, max_chars: int, seconds: float = EXTRACT_SECONDS) -> str:
    """What follows a PDF's `[Attached file: ...]` header: a newline and its text cut to
    `max_chars`, or a note saying why there is none."""
    try:
        text = await asyncio.wait_for(asyncio.to_thread(pdf_text, data, max_chars), seconds)
    except TimeoutError:
        log.info("a PDF attachment was not read within %g seconds", seconds)
        return TOO_SLOW.format(seconds)
    if text is None or not text.strip():
        return NO_TEXT
    return "\n" + cut(text, max_chars)
