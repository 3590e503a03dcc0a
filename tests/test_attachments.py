"""Attachments through the real HTTP API: both upload strategies, the model seeing them,
the limits, and two users who never reach each other's files."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatkit_backend.agent.titles import TITLE_PROMPT
from chatkit_backend.config import load_settings

from .conftest import scripted_settings
from .live import ChatKitClient, assistant_text, bearer_for, live_server, signed_in
from .pdfs import text_pdf
from .s3_server import S3_ENV, new_bucket, s3_endpoint  # noqa: F401 (a fixture)
from .scripted_provider import ScriptedProvider, Text

SECRET = "attachments-test-secret-0123456789abcdef"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
NOTES = b"Quarterly notes\nRevenue went up.\n"


def bearer(user: str) -> dict[str, str]:
    return bearer_for(user, SECRET)


@pytest.fixture(params=["database", "directory", "s3"])
def storage(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """ATTACHMENTS_URL (and its endpoint) of each storage."""
    if request.param == "database":
        return {}
    if request.param == "directory":
        return {"attachments_url": f"file://{tmp_path / 'files'}"}
    endpoint = request.getfixturevalue("s3_endpoint")
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    return {
        "attachments_url": f"s3://{new_bucket(endpoint)}/chat",
        "attachments_s3_endpoint": endpoint,
    }


@pytest.fixture
def server_url(
    database_url: str, provider: ScriptedProvider, storage: dict[str, Any]
) -> Iterator[str]:
    settings = scripted_settings(
        database_url,
        provider,
        better_auth_secret=SECRET,
        attachment_max_bytes=64 * 1024,
        max_attachments_per_message=2,
        **storage,
    )
    with live_server(settings) as url:
        yield url


@pytest.fixture
async def users(server_url: str) -> AsyncIterator[tuple[ChatKitClient, ChatKitClient]]:
    async with signed_in(server_url, SECRET, "alice", "bob") as (alice, bob):
        yield alice, bob


def message(text: str, *attachments: str) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": list(attachments),
        "inference_options": {},
    }


async def create(client: ChatKitClient, name: str, size: int, mime_type: str) -> httpx.Response:
    return await client.post(
        {
            "type": "attachments.create",
            "params": {"name": name, "size": size, "mime_type": mime_type},
        }
    )


async def two_phase(
    client: ChatKitClient, name: str, data: bytes, mime_type: str
) -> dict[str, Any]:
    created = await create(client, name, len(data), mime_type)
    assert created.status_code == 200, created.text
    attachment: dict[str, Any] = created.json()
    descriptor = attachment["upload_descriptor"]
    # The ChatKit frontend sends no bearer to the upload URL: the signature is the key.
    async with httpx.AsyncClient() as anonymous:
        uploaded = await anonymous.request(
            descriptor["method"],
            descriptor["url"],
            files={"file": (name, data, mime_type)},
            headers=descriptor.get("headers") or {},
        )
    assert uploaded.status_code == 200, uploaded.text
    done: dict[str, Any] = uploaded.json()
    assert done["id"] == attachment["id"] and "upload_descriptor" not in done
    assert "metadata" not in done
    return done


def model_requests(provider: ScriptedProvider, needle: str) -> list[str]:
    bodies = [json.dumps(r) for r in provider.requests]
    return [b for b in bodies if needle in b]


async def test_two_phase_image_reaches_the_model_and_again_on_a_later_turn(
    users: tuple[ChatKitClient, ChatKitClient], provider: ScriptedProvider
) -> None:
    alice, bob = users
    image = await two_phase(alice, "chart.png", PNG, "image/png")
    assert image["type"] == "image" and image["mime_type"] == "image/png"

    # The preview URL works without a bearer (an <img>) and serves the bytes as sent.
    async with httpx.AsyncClient() as browser:
        preview = await browser.get(image["preview_url"])
        assert preview.status_code == 200
        assert preview.content == PNG
        assert preview.headers["content-type"] == "image/png"
        assert preview.headers["x-content-type-options"] == "nosniff"
        tampered = image["preview_url"].replace("signature=", "signature=0")
        assert (await browser.get(tampered)).status_code == 404

    # Bob cannot send, delete, or upload over Alice's attachment.
    refused = await bob.post(
        {"type": "threads.create", "params": {"input": message("x", image["id"])}}
    )
    assert refused.status_code == 404 and refused.json()["code"] == "attachment_not_found"
    deleted = await bob.post(
        {"type": "attachments.delete", "params": {"attachment_id": image["id"]}}
    )
    assert deleted.status_code == 404

    provider.enqueue(Text("A chart."), Text("Still a chart."))
    events = await alice.stream("threads.create", input=message("What is this?", image["id"]))
    thread_id = events[0]["thread"]["id"]
    data_url = "data:image/png;base64,"
    first = model_requests(provider, data_url)
    assert len(first) == 1 and "What is this?" in first[0] and "chart.png" in first[0]

    await alice.stream("threads.add_user_message", thread_id=thread_id, input=message("And now?"))
    replayed = model_requests(provider, data_url)
    assert len(replayed) == 2 and "And now?" in replayed[1]

    # The thread shows the attachment with a preview URL signed afresh.
    items = await alice.items(thread_id)
    shown = items[0]["attachments"][0]
    assert shown["id"] == image["id"] and shown["preview_url"].startswith("http")
    assert "metadata" not in shown

    # Used in a thread, it cannot be put in another.
    reused = await alice.post(
        {"type": "threads.create", "params": {"input": message("again", image["id"])}}
    )
    assert reused.status_code == 409 and reused.json()["code"] == "attachment_in_use"

    # Deleting the thread takes the bytes along.
    await alice.call("threads.delete", thread_id=thread_id)
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(shown["preview_url"])).status_code == 404


async def test_direct_upload_of_a_text_file_is_read_by_the_model(
    users: tuple[ChatKitClient, ChatKitClient], provider: ScriptedProvider
) -> None:
    alice, bob = users
    response = await alice.http.post(
        "/attachments", files={"file": ("notes.md", NOTES, "text/markdown")}
    )
    assert response.status_code == 200, response.text
    attachment = response.json()
    assert attachment["type"] == "file" and attachment["name"] == "notes.md"
    assert "upload_descriptor" not in attachment

    anonymous = await httpx.AsyncClient(base_url=str(alice.http.base_url)).__aenter__()
    try:
        refused = await anonymous.post(
            "/attachments", files={"file": ("a.txt", b"x", "text/plain")}
        )
        assert refused.status_code == 401
    finally:
        await anonymous.aclose()

    provider.enqueue(Text("Revenue went up."))
    events = await alice.stream("threads.create", input=message("Summarise", attachment["id"]))
    seen = model_requests(provider, "Revenue went up.")
    assert len(seen) == 1 and "notes.md" in seen[0] and "Quarterly notes" in seen[0]

    # The REST conversation and its exports list the attachment with a download link.
    thread_id = events[0]["thread"]["id"]
    detail = (await alice.http.get(f"/api/conversations/{thread_id}")).json()
    (listed,) = detail["messages"][0]["attachments"]
    assert {k: listed[k] for k in ("id", "name", "mime_type", "size")} == {
        "id": attachment["id"],
        "name": "notes.md",
        "mime_type": "text/markdown",
        "size": len(NOTES),
    }
    assert "attachments" not in detail["messages"][1]
    async with httpx.AsyncClient() as browser:
        download = await browser.get(listed["url"])
    assert download.content == NOTES
    assert download.headers["content-disposition"].startswith("attachment;")
    markdown = await alice.http.get(f"/api/conversations/{thread_id}/export?format=markdown")
    assert f"- `notes.md` (text/markdown, {len(NOTES)} bytes) <http" in markdown.text
    exported = await alice.http.get(f"/api/conversations/{thread_id}/export")
    assert exported.json()["messages"][0]["attachments"][0]["name"] == "notes.md"
    assert (await bob.http.get(f"/api/conversations/{thread_id}/export")).status_code == 404

    # Bob's message naming it is refused before anything runs.
    refused = await bob.post(
        {"type": "threads.create", "params": {"input": message("x", attachment["id"])}}
    )
    assert refused.status_code == 404


async def test_delete_removes_record_and_bytes(users: tuple[ChatKitClient, ChatKitClient]) -> None:
    alice, _ = users
    image = await two_phase(alice, "a.png", PNG, "image/png")
    assert await alice.call("attachments.delete", attachment_id=image["id"]) == {}
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(image["preview_url"])).status_code == 404
    again = await alice.post(
        {"type": "attachments.delete", "params": {"attachment_id": image["id"]}}
    )
    assert again.status_code == 404


async def test_every_bad_upload_is_a_clear_4xx(
    users: tuple[ChatKitClient, ChatKitClient],
) -> None:
    alice, _ = users

    async def code_of(response: httpx.Response) -> tuple[int, str]:
        return response.status_code, response.json().get("code")

    assert await code_of(await create(alice, "big.png", 64 * 1024 + 1, "image/png")) == (
        413,
        "attachment_too_large",
    )
    assert await code_of(await create(alice, "x.exe", 10, "application/x-msdownload")) == (
        415,
        "attachment_type_not_allowed",
    )
    assert await code_of(await create(alice, "", 10, "text/plain")) == (
        400,
        "invalid_attachment_name",
    )
    assert await code_of(await create(alice, "n.txt", -1, "text/plain")) == (400, "invalid_size")

    async def upload(declared: int, data: bytes, mime: str, **kw: Any) -> httpx.Response:
        created = (await create(alice, "f", declared, mime)).json()
        async with httpx.AsyncClient() as anonymous:
            return await anonymous.post(created["upload_descriptor"]["url"], content=data, **kw)

    # More bytes than declared: cut off while streaming; fewer: refused at the end.
    assert await code_of(await upload(10, b"x" * 11, "text/plain")) == (
        422,
        "attachment_size_mismatch",
    )
    assert await code_of(await upload(10, b"x" * 9, "text/plain")) == (
        422,
        "attachment_size_mismatch",
    )
    assert await code_of(await upload(len(PNG), b"G" * len(PNG), "image/png")) == (
        415,
        "attachment_type_mismatch",
    )
    assert await code_of(await upload(4, b"\xff\xfe\x00\x01", "text/plain")) == (
        415,
        "attachment_type_mismatch",
    )

    # Past ATTACHMENT_MAX_BYTES in a direct upload, sent in chunks with no length: 413.
    async def chunks() -> AsyncIterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        yield b"Content-Type: text/plain\r\n\r\n"
        for _ in range(100):
            yield b"x" * 1024

    big = await alice.http.post(
        "/attachments",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert await code_of(big) == (413, "attachment_too_large")
    malformed = await alice.http.post(
        "/attachments", content=b"nothing", headers={"content-type": "multipart/form-data"}
    )
    assert await code_of(malformed) == (400, "invalid_upload")
    no_file = await alice.http.post("/attachments", data={"other": "x"}, files={"x": ("a", b"b")})
    assert await code_of(no_file) == (400, "invalid_upload")

    # An attachment whose upload has not happened cannot be sent.
    pending = (await create(alice, "later.txt", 3, "text/plain")).json()
    early = await alice.post(
        {"type": "threads.create", "params": {"input": message("x", pending["id"])}}
    )
    assert await code_of(early) == (409, "attachment_not_uploaded")

    # A finished upload cannot be repeated; a bad signature is a missing attachment.
    done = await two_phase(alice, "n.txt", b"abc", "text/plain")
    async with httpx.AsyncClient() as anonymous:
        url = pending["upload_descriptor"]["url"]
        assert (
            await anonymous.post(url.replace(pending["id"], done["id"]), content=b"abc")
        ).status_code == 404
        forged = url.replace("signature=", "signature=f")
        assert (await anonymous.post(forged, content=b"abc")).status_code == 404
    repeat = await alice.http.post(
        "/attachments/" + done["id"] + "/upload?expires=1&signature=x", content=b"abc"
    )
    assert repeat.status_code == 404

    # MAX_ATTACHMENTS_PER_MESSAGE (2 here), and no id twice.
    more = [(await two_phase(alice, f"{i}.txt", b"abc", "text/plain"))["id"] for i in range(2)]
    too_many = await alice.post(
        {"type": "threads.create", "params": {"input": message("x", done["id"], *more)}}
    )
    assert await code_of(too_many) == (400, "too_many_attachments")
    control = await alice.post(
        {"type": "threads.create", "params": {"input": message("x", "atc_\u0085")}}
    )
    assert await code_of(control) == (400, "invalid_text")
    twice = await alice.post(
        {"type": "threads.create", "params": {"input": message("x", done["id"], done["id"])}}
    )
    assert await code_of(twice) == (400, "duplicate_attachment")


async def test_upload_edges(users: tuple[ChatKitClient, ChatKitClient]) -> None:
    alice, _ = users
    created = (await create(alice, "p.png", len(PNG), "image/png")).json()
    url = created["upload_descriptor"]["url"]
    async with httpx.AsyncClient() as anonymous:
        # Before the upload, the preview has nothing to show.
        assert (await anonymous.get(created["preview_url"])).status_code == 404
        expired = url.replace("expires=", "expires=1").split("&")[0] + "&signature=00"
        assert (await anonymous.put(expired, content=PNG)).status_code == 404
        # PUT with the raw bytes works as well as a multipart POST.
        put = await anonymous.put(url, content=PNG, headers={"content-type": "image/png"})
        assert put.status_code == 200 and put.json()["type"] == "image"
        again = await anonymous.put(url, content=PNG)
        assert again.status_code == 409 and again.json()["code"] == "already_uploaded"

        # At the limit exactly, one byte more is cut off as too large.
        full = (await create(alice, "f.txt", 64 * 1024, "text/plain")).json()
        over = await anonymous.post(
            full["upload_descriptor"]["url"], content=b"x" * (64 * 1024 + 1)
        )
        assert over.status_code == 413
        # A Content-Length already past the limit is refused before reading.
        huge = await anonymous.post(full["upload_descriptor"]["url"], content=b"x" * (200 * 1024))
        assert huge.status_code == 413

    def multipart(body: bytes, boundary: str | None = "b") -> dict[str, Any]:
        kind = "multipart/form-data" + (f"; boundary={boundary}" if boundary else "")
        return {"content": body, "headers": {"content-type": kind}}

    part = (
        b'--b\r\nContent-Disposition: form-data; name="file"%s\r\n'
        b"Content-Type: text/plain\r\n\r\nabc\r\n"
    )
    cases = [
        multipart(part % b'; filename="a.txt"' * 2 + b"--b--\r\n"),  # two files
        multipart(part % b"" + b"--b--\r\n"),  # no filename
        multipart(b"", boundary=None),  # no boundary
    ]
    for case in cases:
        refused = await alice.http.post("/attachments", **case)
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_upload", case
    # Cut before its closing boundary: never stored as if whole.
    cut = await alice.http.post("/attachments", **multipart(part % b'; filename="a.txt"'))
    assert cut.status_code == 400 and cut.json()["code"] == "upload_interrupted"

    # A signature that is not even ASCII is a bad signature: 404, not 500.
    async with httpx.AsyncClient() as anonymous:
        shown = await anonymous.get(created["preview_url"])
        assert shown.status_code == 200
        odd = created["preview_url"].split("signature=")[0] + "signature=%C3%A9"
        assert (await anonymous.get(odd)).status_code == 404


async def test_a_pdf_reaches_the_model_as_its_text(
    users: tuple[ChatKitClient, ChatKitClient], provider: ScriptedProvider
) -> None:
    alice, _ = users
    pdf = text_pdf("Invoice total 42 euros")
    attachment = await two_phase(alice, "invoice.pdf", pdf, "application/pdf")
    provider.enqueue(Text("42 euros."))
    await alice.stream("threads.create", input=message("", attachment["id"]))
    (seen,) = model_requests(provider, "Invoice total 42 euros")
    assert "invoice.pdf (application/pdf" in seen
    # With no text of its own, the title request is given the file's name.
    assert model_requests(provider, TITLE_PROMPT) and all(
        "invoice.pdf" in body for body in model_requests(provider, TITLE_PROMPT)
    )


async def test_the_offline_model_names_what_it_was_given(database_url: str) -> None:
    settings = load_settings(database_url=database_url, model="offline", agent="chat")
    with live_server(settings) as url:
        client = ChatKitClient(url)
        try:
            notes = await two_phase(client, "notes.md", NOTES, "text/markdown")
            image = await two_phase(client, "chart.png", PNG, "image/png")
            events = await client.stream(
                "threads.create", input=message("what are these?", notes["id"], image["id"])
            )
        finally:
            await client.aclose()
    reply = assistant_text(events)
    assert "notes.md (text/markdown, 33 bytes), first line: “Quarterly notes”" in reply
    assert f"chart.png (image/png, {len(PNG)} bytes)" in reply
    assert "offline model" in reply
