"""Dictation in the built-in page: the microphone shows only when the server transcribes;
recording and stopping puts the transcript in the composer, unsent. Chromium's fake
microphone (a tone) stands in for a person, the scripted provider for the speech model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect

from chatkit_backend.config import load_settings

from ..databases import sqlite_url
from ..live import live_server
from ..optional import require
from ..scripted_provider import ScriptedProvider
from .conftest import (
    CHROMIUM,
    LAUNCH_ARGS,
    WebPage,
    open_page,
    start_server,
    wait_until_ready,
)

FAKE_MICROPHONE = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Chromium with a fake microphone it may use without asking."""
    require(CHROMIUM.is_file(), f"no browser at {CHROMIUM}")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=LAUNCH_ARGS + FAKE_MICROPHONE, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def voice_url(tmp_path: Path, provider: ScriptedProvider) -> Iterator[str]:
    yield from start_server(
        tmp_path, provider, model="offline", transcription_model="openai/whisper-1"
    )


@pytest.fixture
async def page(
    browser: Browser, voice_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[WebPage]:
    async for web in open_page(browser, voice_url, request):
        yield web


async def record_a_second(page: WebPage) -> None:
    mic = page.testid("mic")
    await mic.click()
    await expect(mic).to_have_class("mic recording")
    # Some audio before stopping: the timer has passed a second.
    await expect(page.testid("mic-time")).to_have_text("0:01", timeout=20_000)
    await mic.click()


async def test_record_stop_and_the_transcript_is_in_the_composer_unsent(
    page: WebPage, provider: ScriptedProvider
) -> None:
    provider.transcript = "buy milk tomorrow"
    composer = page.testid("composer")
    await composer.fill("Remind me:")
    await expect(page.testid("mic")).to_be_visible()
    await record_a_second(page)

    await expect(composer).to_have_value("Remind me: buy milk tomorrow")
    await expect(page.testid("mic")).to_have_attribute("aria-pressed", "false")
    await expect(page.testid("send")).to_be_enabled()
    (sent,) = provider.transcriptions
    # What MediaRecorder made (Chromium: Opus in WebM), as the file the provider got.
    assert b'filename="audio.webm"' in sent and b"Content-Type: audio/webm" in sent
    assert b"\x1aE\xdf\xa3" in sent  # the WebM header: real audio, not an empty part
    assert await page.role("user").count() == 0  # inserted, not sent


async def test_a_failing_service_says_so_and_leaves_the_composer_alone(
    browser: Browser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = load_settings(
        database_url=sqlite_url(tmp_path),
        model="offline",
        transcription_model="openai/whisper-1",
        model_api_base="http://127.0.0.1:9/v1",  # nothing listens there
    )
    with live_server(settings) as url:
        wait_until_ready(url)
        async for page in open_page(browser, url, request):
            page.allowed_errors.append("502")  # Chromium logs the failed request
            await page.testid("composer").fill("draft")
            await record_a_second(page)
            await expect(page.testid("error")).to_contain_text("Transcription failed")
            await expect(page.testid("composer")).to_have_value("draft")
            await expect(page.testid("mic")).to_be_enabled()


async def test_a_recording_over_the_limit_is_refused_with_a_clear_message(
    browser: Browser, tmp_path: Path, provider: ScriptedProvider, request: pytest.FixtureRequest
) -> None:
    servers = start_server(
        tmp_path,
        provider,
        model="offline",
        transcription_model="openai/whisper-1",
        attachment_max_bytes=100,  # less than a second of any recording
    )
    url = next(servers)
    try:
        async for page in open_page(browser, url, request):
            page.allowed_errors.append("413")
            await record_a_second(page)
            await expect(page.testid("error")).to_contain_text("The recording is too long")
            await expect(page.testid("composer")).to_have_value("")
    finally:
        servers.close()
    assert provider.transcriptions == []


async def test_a_refused_microphone_says_how_to_allow_it(
    voice_url: str, request: pytest.FixtureRequest
) -> None:
    """Without the fake permission prompt, a browser that was not given the microphone
    refuses it, as when a person clicks Block."""
    require(CHROMIUM.is_file(), f"no browser at {CHROMIUM}")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*LAUNCH_ARGS, "--use-fake-device-for-media-stream"],
            headless=True,
        )
        try:
            async for page in open_page(browser, voice_url, request):
                await page.testid("mic").click()
                await expect(page.testid("error")).to_contain_text("Microphone access was denied")
                await expect(page.testid("mic")).to_have_attribute("aria-pressed", "false")
                await expect(page.testid("mic-time")).to_be_hidden()
        finally:
            await browser.close()


async def test_without_transcription_there_is_no_microphone(
    browser: Browser, tmp_path: Path, provider: ScriptedProvider, request: pytest.FixtureRequest
) -> None:
    servers = start_server(tmp_path, provider, model="offline")
    url = next(servers)
    try:
        async for page in open_page(browser, url, request):
            await expect(page.page.locator("body[data-features=loaded]")).to_have_count(1)
            await expect(page.testid("mic")).to_be_hidden()
            await expect(page.testid("attach")).to_be_visible()  # the composer is drawn
    finally:
        servers.close()
