"""A file sent in the built-in page shows as a chip that downloads it: a link whose bytes
are the file's, signed afresh on every load of the thread."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from ..scripted_provider import ScriptedProvider
from .conftest import WebPage, open_page, start_server

SIGNED_LINK = re.compile(r"/attachments/atc_\w+/content\?expires=\d+&signature=")
NOTES = b"First line here\nsecond line\n"


@pytest.fixture
def offline_url(tmp_path: Path, provider: ScriptedProvider) -> Iterator[str]:
    yield from start_server(tmp_path, provider, model="offline", agent="chat")


@pytest.fixture
async def page(
    browser: Browser, offline_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[WebPage]:
    async for web in open_page(browser, offline_url, request):
        yield web


async def downloaded(href: str | None) -> httpx.Response:
    assert href and "signature=" in href, href
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(href)


async def test_the_chip_downloads_the_file_and_still_does_after_a_reload(page: WebPage) -> None:
    await page.testid("file-input").set_input_files(
        [{"name": "notes.txt", "mimeType": "text/plain", "buffer": NOTES}]
    )
    await expect(page.testid("pending-files").locator(".uploading")).to_have_count(0)
    await page.send("read this")
    await expect(page.role("assistant")).to_contain_text("notes.txt")

    chip = page.role("user").locator("a.file-chip")
    await expect(chip).to_have_text("notes.txt")
    await expect(chip).to_have_attribute("href", SIGNED_LINK)
    first = await chip.get_attribute("href")
    response = await downloaded(first)
    assert response.status_code == 200 and response.content == NOTES
    assert response.headers["content-disposition"].startswith("attachment;")

    await page.page.reload()
    await page.testid("threads").locator("[data-thread-id]").first.click()
    chip = page.role("user").locator("a.file-chip")
    await expect(chip).to_have_attribute("href", SIGNED_LINK)
    again = await downloaded(await chip.get_attribute("href"))
    assert again.status_code == 200 and again.content == NOTES

    # A click downloads it in the browser too.
    async with page.page.expect_download() as event:
        await chip.click()
    download = await event.value
    assert download.suggested_filename == "notes.txt"
    saved = await download.path()
    assert saved.read_bytes() == NOTES
