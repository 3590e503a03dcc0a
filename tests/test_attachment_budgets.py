"""What one model request may carry of attachments, through the real HTTP API on SQLite
and PostgreSQL: images within MODEL_IMAGE_BYTES_BUDGET (newest first, the rest named),
and a PDF's text extracted once, at upload, and read from the record on every turn."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.agent.titles import TITLE_PROMPT
from chatkit_backend.chat.tables import AttachmentRow
from chatkit_backend.config import load_settings
from chatkit_backend.db import create_engine

from .conftest import scripted_settings
from .live import ChatKitClient, live_server, signed_in
from .pdfs import text_pdf
from .scripted_provider import ScriptedProvider, Text

SECRET = "attachment-budgets-secret-0123456789abcdef"
PNG = b"\x89PNG\r\n\x1a\n"
BUDGET = 1000


@pytest.fixture
def server_url(database_url: str, provider: ScriptedProvider) -> Iterator[str]:
    settings = scripted_settings(
        database_url, provider, better_auth_secret=SECRET, model_image_bytes_budget=BUDGET
    )
    with live_server(settings) as url:
        yield url


@pytest.fixture
async def alice(server_url: str) -> AsyncIterator[ChatKitClient]:
    async with signed_in(server_url, SECRET, "alice") as (client,):
        yield client


async def direct(client: ChatKitClient, name: str, data: bytes, mime_type: str) -> str:
    response = await client.http.post("/attachments", files={"file": (name, data, mime_type)})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def message(text: str, *attachments: str) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": list(attachments),
        "inference_options": {},
    }


def turns_with(provider: ScriptedProvider, needle: str) -> list[str]:
    """The model requests holding `needle`, turns only (not title requests)."""
    bodies = (json.dumps(r) for r in provider.requests)
    return [b for b in bodies if needle in b and TITLE_PROMPT not in b]


def request_with(provider: ScriptedProvider, needle: str) -> str:
    (body,) = turns_with(provider, needle)
    return body


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


async def test_images_past_the_budget_are_named_newest_first(
    alice: ChatKitClient, provider: ScriptedProvider
) -> None:
    old = PNG + b"o" * 592  # 600 bytes each: one fits in the 1000 of the budget, not two
    new = PNG + b"n" * 592
    huge = PNG + b"h" * (BUDGET + 1)
    first = await direct(alice, "old.png", old, "image/png")
    provider.enqueue(Text("Old."), Text("New."))
    events = await alice.stream("threads.create", input=message("Turn one", first))
    thread_id = events[0]["thread"]["id"]
    assert data_url(old) in request_with(provider, "Turn one")

    second = await direct(alice, "new.png", new, "image/png")
    too_big = await direct(alice, "huge.png", huge, "image/png")
    await alice.stream(
        "threads.add_user_message", thread_id=thread_id, input=message("Turn two", second, too_big)
    )
    body = request_with(provider, "Turn two")
    # The newest that fits is shown; the one over the budget on its own and the older
    # one that no longer fits beside it are named, with what they are.
    assert data_url(new) in body
    assert data_url(old) not in body and data_url(huge) not in body
    note = "not shown: over the per-request image budget"
    assert f"image old.png (image/png, 600 bytes) {note}" in body
    assert f"image huge.png (image/png, {len(huge)} bytes) {note}" in body


async def test_a_pdf_is_read_once_and_its_kept_text_reaches_every_turn(
    alice: ChatKitClient, provider: ScriptedProvider, database_url: str
) -> None:
    attachment_id = await direct(
        alice, "report.pdf", text_pdf("Margins rose 7%"), "application/pdf"
    )
    engine = create_engine(load_settings(database_url=database_url).async_database_url)
    try:
        # Extracted when the upload completed, already cut to the budget.
        assert await kept_text(engine, attachment_id) == "\nMargins rose 7%"
        # Every turn reads the record, not the PDF: what is kept is what the model sees.
        async with engine.begin() as conn:
            await conn.execute(
                update(AttachmentRow)
                .where(AttachmentRow.id == attachment_id)
                .values(extracted_text="\nThe kept text, not the PDF's")
            )
        provider.enqueue(Text("Seen."), Text("Again."))
        events = await alice.stream("threads.create", input=message("Turn one", attachment_id))
        await alice.stream(
            "threads.add_user_message",
            thread_id=events[0]["thread"]["id"],
            input=message("Turn two"),
        )
        # Turn one's request, and turn two's replaying it.
        bodies = turns_with(provider, "Turn one")
        assert len(bodies) == 2 and "Turn two" in bodies[1]
        for body in bodies:
            assert "report.pdf (application/pdf" in body
            assert "The kept text, not the PDF's" in body and "Margins rose" not in body
    finally:
        await engine.dispose()


async def kept_text(engine: AsyncEngine, attachment_id: str) -> str | None:
    async with engine.connect() as conn:
        text = await conn.scalar(
            select(AttachmentRow.extracted_text).where(AttachmentRow.id == attachment_id)
        )
    return None if text is None else str(text)
