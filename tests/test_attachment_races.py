"""Requests racing for one attachment, over real HTTP on SQLite and PostgreSQL: two
uploads, an upload and a delete, two messages, a message and a delete. Each race has
one winner, the loser a clear 409 (or 404 when the attachment is gone), and no bytes
outlive their record.

An upload whose body is held back (an asyncio.Event) is in flight on the server while
the other request runs to its end: the interleaving that a read-then-write would lose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import scripted_settings
from .live import ChatKitClient, live_server, signed_in
from .scripted_provider import ScriptedProvider, Text

SECRET = "attachment-races-secret-0123456789abcdef"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.fixture
def files(tmp_path: Path) -> Path:
    return tmp_path / "files"


@pytest.fixture
def server_url(database_url: str, provider: ScriptedProvider, files: Path) -> Iterator[str]:
    settings = scripted_settings(
        database_url, provider, better_auth_secret=SECRET, attachments_url=f"file://{files}"
    )
    with live_server(settings) as url:
        yield url


@pytest.fixture
async def alice(server_url: str) -> AsyncIterator[ChatKitClient]:
    async with signed_in(server_url, SECRET, "alice") as (client,):
        yield client


def stored(files: Path) -> set[str]:
    """The attachment ids that have bytes in the directory storage."""
    if not files.exists():
        return set()
    return {p.name for p in files.iterdir() if p.name.startswith("atc_")}


async def created(client: ChatKitClient, data: bytes, mime_type: str = "image/png") -> Any:
    response = await client.post(
        {
            "type": "attachments.create",
            "params": {"name": "a.png", "size": len(data), "mime_type": mime_type},
        }
    )
    assert response.status_code == 200, response.text
    return response.json()


async def held_upload(url: str, data: bytes, release: asyncio.Event) -> httpx.Response:
    """Upload `data`, sending its first byte at once and the rest once `release` is set."""
    sent = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield data[:1]
        sent.set()
        await release.wait()
        yield data[1:]

    async with httpx.AsyncClient() as anonymous:
        request = anonymous.post(
            url, content=body(), headers={"content-type": "image/png"}, timeout=30
        )
        return await request


async def upload(url: str, data: bytes) -> httpx.Response:
    async with httpx.AsyncClient() as anonymous:
        return await anonymous.post(url, content=data, headers={"content-type": "image/png"})


def code(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.json().get("code")


async def test_two_uploads_of_one_attachment_have_one_winner(
    alice: ChatKitClient, files: Path
) -> None:
    attachment = await created(alice, PNG)
    url = attachment["upload_descriptor"]["url"]
    first, second = PNG[:-1] + b"1", PNG[:-1] + b"2"
    release = asyncio.Event()

    async def second_then_release() -> httpx.Response:
        await asyncio.sleep(0)  # the held upload goes first
        try:
            return await upload(url, second)
        finally:
            release.set()

    held, quick = await asyncio.gather(held_upload(url, first, release), second_then_release())
    assert quick.status_code == 200, quick.text
    assert code(held) == (409, "already_uploaded")
    # The stored bytes are the winner's.
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(attachment["preview_url"])).content == second
    assert stored(files) == {attachment["id"]}


async def test_an_upload_racing_a_delete_leaves_nothing(alice: ChatKitClient, files: Path) -> None:
    attachment = await created(alice, PNG)
    release = asyncio.Event()

    async def delete_then_release() -> httpx.Response:
        await asyncio.sleep(0)
        try:
            return await alice.post(
                {"type": "attachments.delete", "params": {"attachment_id": attachment["id"]}}
            )
        finally:
            release.set()

    held, deleted = await asyncio.gather(
        held_upload(attachment["upload_descriptor"]["url"], PNG, release),
        delete_then_release(),
    )
    assert deleted.status_code == 200, deleted.text
    # The delete won: the upload that finished after it is refused, its bytes not kept.
    assert code(held) == (404, "attachment_not_found")
    assert stored(files) == set()
    gone = await alice.post(
        {"type": "attachments.delete", "params": {"attachment_id": attachment["id"]}}
    )
    assert gone.status_code == 404


def message(text: str, attachment_id: str) -> dict[str, Any]:
    return {
        "type": "threads.create",
        "params": {
            "input": {
                "content": [{"type": "input_text", "text": text}],
                "attachments": [attachment_id],
                "inference_options": {},
            }
        },
    }


async def uploaded(client: ChatKitClient) -> str:
    attachment = await created(client, PNG)
    assert (await upload(attachment["upload_descriptor"]["url"], PNG)).status_code == 200
    return str(attachment["id"])


async def test_two_messages_racing_for_one_attachment(
    alice: ChatKitClient, provider: ScriptedProvider
) -> None:
    attachment_id = await uploaded(alice)
    provider.enqueue(Text("One."), Text("Two."))
    one, two = await asyncio.gather(
        alice.post(message("first", attachment_id)), alice.post(message("second", attachment_id))
    )
    statuses = sorted([one.status_code, two.status_code])
    assert statuses == [200, 409], (one.text, two.text)
    loser = one if one.status_code == 409 else two
    assert loser.json()["code"] == "attachment_in_use"
    # The winner's thread shows it; the attachment is in exactly one conversation.
    threads = (await alice.call("threads.list", limit=10))["data"]
    assert len(threads) == 1
    # Sent, it belongs to that conversation: deleting it alone is refused.
    deleted = await alice.post(
        {"type": "attachments.delete", "params": {"attachment_id": attachment_id}}
    )
    assert code(deleted) == (409, "attachment_in_use")


async def test_a_message_racing_a_delete(
    alice: ChatKitClient, provider: ScriptedProvider, files: Path
) -> None:
    attachment_id = await uploaded(alice)
    provider.enqueue(Text("Seen."))
    sent, deleted = await asyncio.gather(
        alice.post(message("look", attachment_id)),
        alice.post({"type": "attachments.delete", "params": {"attachment_id": attachment_id}}),
    )
    if sent.status_code == 200:
        # Sent first: the file is part of the conversation, and stays.
        assert code(deleted) == (409, "attachment_in_use")
        assert stored(files) == {attachment_id}
    else:
        assert code(sent) == (404, "attachment_not_found")
        assert deleted.status_code == 200
        assert stored(files) == set()
