"""Attachments in the built-in page: attach an image and a text file, send, see them
named in the offline model's reply and shown in the thread after a reload."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from ..scripted_provider import ScriptedProvider
from .conftest import WebPage, open_page, start_server


def one_pixel_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture
def offline_url(tmp_path: Path, provider: ScriptedProvider) -> Iterator[str]:
    yield from start_server(tmp_path, provider, model="offline", agent="chat")


@pytest.fixture
async def page(
    browser: Browser, offline_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[WebPage]:
    async for web in open_page(browser, offline_url, request):
        yield web


async def test_attach_send_and_see_them_after_a_reload(page: WebPage) -> None:
    png = one_pixel_png()
    await page.testid("file-input").set_input_files(
        [
            {"name": "dot.png", "mimeType": "image/png", "buffer": png},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"First line here\nmore"},
        ]
    )
    pending = page.testid("pending-files").locator(".pending-file")
    await expect(pending).to_have_count(2)
    await expect(pending.locator("img.thumb")).to_have_count(1)
    await expect(page.testid("pending-files").locator(".uploading")).to_have_count(0)

    await page.send("what are these?")
    assistant = page.role("assistant")
    await expect(assistant).to_contain_text(f"dot.png (image/png, {len(png)} bytes)")
    await expect(assistant).to_contain_text("notes.txt (text/plain, 20 bytes), first line:")
    await expect(page.testid("pending-files")).to_be_hidden()

    await page.page.reload()
    await page.testid("threads").locator("[data-thread-id]").first.click()
    user = page.role("user")
    image = user.locator("img.sent-image")
    await expect(image).to_have_attribute("alt", "dot.png")
    await page.page.wait_for_function(
        "() => document.querySelector('img.sent-image')?.naturalWidth === 1"
    )
    await expect(user.locator(".file-chip")).to_have_text("notes.txt")


async def test_a_refused_file_says_why_and_can_be_removed(page: WebPage) -> None:
    page.allowed_errors.append("415")  # Chromium logs the refused upload
    await page.testid("file-input").set_input_files(
        [{"name": "tool.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ"}]
    )
    failed = page.testid("pending-files").locator(".failed")
    await expect(failed).to_contain_text("not accepted")
    await failed.locator(".remove").click()
    await expect(page.testid("pending-files")).to_be_hidden()
