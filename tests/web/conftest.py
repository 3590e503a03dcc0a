"""Browser fixtures: Debian's Chromium driven by Playwright against a live server on SQLite.

Playwright never downloads a browser here: it launches /usr/bin/chromium, which
scripts/test installs with apt-get. Without it these tests skip, saying why (in CI
that is a failure: tests/optional.py). Every page records console errors and uncaught
exceptions, fails the test on any it did not expect, and leaves a screenshot in
test-artifacts/.
"""

from __future__ import annotations

import os

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Locator, Page, async_playwright

from ..conftest import is_title_request, scripted_settings
from ..databases import sqlite_url
from ..live import live_server
from ..optional import require
from ..scripted_provider import ScriptedProvider, StreamRecord

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require(
        CHROMIUM.is_file(),  # noqa: ASYNC240 - one stat, before the test starts
        f"no browser at {CHROMIUM}: scripts/test installs Debian's chromium with apt-get",
    )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


def wait_until_ready(url: str) -> None:
    """Until the server has loaded its chat machinery (seconds on a busy machine).

    A chat request made before then waits for the load; a page test would spend that wait
    out of its first expectation's time, and fail on a loaded machine for no fault of the page.
    """
    deadline = time.monotonic() + 120
    while httpx.get(url + "/health/ready").status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError("the test server did not get ready")
        time.sleep(0.05)


def start_server(tmp_path: Path, provider: ScriptedProvider, **extra: Any) -> Iterator[str]:
    with live_server(scripted_settings(sqlite_url(tmp_path), provider, **extra)) as url:
        wait_until_ready(url)
        yield url


@pytest.fixture
def web_url(tmp_path: Path, provider: ScriptedProvider) -> Iterator[str]:
    """A live server in local single-user mode, answering through the scripted provider."""
    yield from start_server(tmp_path, provider)


@dataclass
class WebPage:
    """A page of the app in a fresh browser context, with what went wrong in it."""

    page: Page
    base_url: str
    errors: list[str] = field(default_factory=list)
    # Console errors a test provokes on purpose (Chromium logs every 4xx fetch).
    allowed_errors: list[str] = field(default_factory=list)

    def testid(self, name: str) -> Locator:
        return self.page.get_by_test_id(name)

    def role(self, role: str) -> Locator:
        return self.page.locator(f'[data-testid="messages"] [data-role="{role}"]')

    async def send(self, text: str) -> None:
        composer = self.testid("composer")
        await composer.fill(text)
        await composer.press("Enter")


def artifact_name(node_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", node_name).strip("_")


async def open_page(
    browser: Browser,
    base_url: str,
    request: pytest.FixtureRequest,
    viewport: dict[str, int] = DESKTOP,
) -> AsyncIterator[WebPage]:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    page.set_default_timeout(10_000)
    web = WebPage(page, base_url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            web.errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: web.errors.append(f"uncaught: {exc}"))
    await page.goto(base_url + "/")
    try:
        yield web
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{artifact_name(request.node.name)}.png"
        await page.screenshot(path=str(path), full_page=True)
        await context.close()
    unexpected = [e for e in web.errors if not any(re.search(p, e) for p in web.allowed_errors)]
    assert not unexpected, f"errors in the page: {unexpected}"


@pytest.fixture
async def web(
    browser: Browser, web_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[WebPage]:
    """The page at 1280x800 on a fresh server."""
    async for page in open_page(browser, web_url, request):
        yield page


@pytest.fixture
async def rest(web_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web_url, timeout=10) as client:
        yield client


async def reply_stream(provider: ScriptedProvider) -> StreamRecord:
    """The newest agent (not title) stream of the provider, once it has ended."""
    deadline = time.monotonic() + 10
    while True:
        for record in reversed(provider.streams):
            if not is_title_request(provider.requests[record.request_index]):
                if record.ended:
                    return record
                break
        if time.monotonic() > deadline:
            raise TimeoutError("the reply stream did not end")
        await asyncio.sleep(0.01)
