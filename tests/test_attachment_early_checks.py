"""A direct upload is refused on what arrives first: the file part's declared name and
type before any of its bytes, its first bytes before the rest. Each body here is larger
than ATTACHMENT_MAX_BYTES, so a check made only after reading would answer 413."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from .conftest import scripted_settings
from .live import ChatKitClient, live_server, signed_in
from .scripted_provider import ScriptedProvider

SECRET = "attachment-early-secret-0123456789abcdef"
LIMIT = 64 * 1024


@pytest.fixture
def server_url(database_url: str, provider: ScriptedProvider) -> Iterator[str]:
    settings = scripted_settings(
        database_url, provider, better_auth_secret=SECRET, attachment_max_bytes=LIMIT
    )
    with live_server(settings) as url:
        yield url


@pytest.fixture
async def alice(server_url: str) -> AsyncIterator[ChatKitClient]:
    async with signed_in(server_url, SECRET, "alice") as (client,):
        yield client


async def upload(client: ChatKitClient, part_headers: bytes, first: bytes) -> httpx.Response:
    """A multipart upload streamed with no length: the part's headers, `first`, then
    more than the limit of filler."""

    async def body() -> AsyncIterator[bytes]:
        yield b"--b\r\n" + part_headers + b"\r\n\r\n"
        yield first
        for _ in range(2 * LIMIT // 1024):
            yield b"x" * 1024

    return await client.http.post(
        "/attachments", content=body(), headers={"content-type": "multipart/form-data; boundary=b"}
    )


def code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


async def test_the_declared_type_and_first_bytes_are_checked_before_the_rest(
    alice: ChatKitClient,
) -> None:
    disposition = b'Content-Disposition: form-data; name="file"; filename="%s"\r\n'
    not_allowed = await upload(
        alice, disposition % b"a.exe" + b"Content-Type: application/x-msdownload", b"MZ"
    )
    assert code(not_allowed) == (415, "attachment_type_not_allowed")
    no_name = await upload(
        alice, b'Content-Disposition: form-data; name="file"\r\nContent-Type: text/plain', b"a"
    )
    assert code(no_name) == (400, "invalid_upload")
    not_a_png = await upload(
        alice, disposition % b"a.png" + b"Content-Type: image/png", b"GIF89a" + b"\x00" * 20
    )
    assert code(not_a_png) == (415, "attachment_type_mismatch")
    # The same start with the type it is: only the size stops it.
    a_gif = await upload(
        alice, disposition % b"a.gif" + b"Content-Type: image/gif", b"GIF89a" + b"\x00" * 20
    )
    assert code(a_gif) == (413, "attachment_too_large")


async def test_a_two_phase_upload_is_sniffed_from_its_first_bytes(alice: ChatKitClient) -> None:
    created = await alice.post(
        {
            "type": "attachments.create",
            "params": {"name": "p.png", "size": LIMIT, "mime_type": "image/png"},
        }
    )
    url = created.json()["upload_descriptor"]["url"]

    async def body() -> AsyncIterator[bytes]:
        yield b"GIF89a" + b"\x00" * 20
        for _ in range(LIMIT // 1024 + 1):
            yield b"x" * 1024

    async with httpx.AsyncClient() as anonymous:
        refused = await anonymous.post(url, content=body())
    assert code(refused) == (415, "attachment_type_mismatch")
