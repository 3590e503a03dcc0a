"""What one model request may carry of attachments, through the real HTTP API on SQLite
and PostgreSQL: images within MODEL_IMAGE_BYTES_BUDGET (newest first, the rest named),
and a PDF's text extracted once, at upload, and read from the record on every turn."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from chatkit_backend.agent.titles import TITLE_PROMPT

from .conftest import scripted_settings
from .live import ChatKitClient, live_server, signed_in
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


def request_with(provider: ScriptedProvider, needle: str) -> str:
    """The (one) model request whose body holds `needle`: a turn, not a title request."""
    bodies = (json.dumps(r) for r in provider.requests)
    (body,) = [b for b in bodies if needle in b and TITLE_PROMPT not in b]
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
