"""The page's model picker: shown when MODELS offers a choice, sent with each message,
and following the thread on screen."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from ..conftest import is_title_request
from ..scripted_provider import ScriptedProvider, Text
from .conftest import WebPage, open_page, start_server

MODELS = "openai/alpha=Alpha,openai/beta=Beta"


@pytest.fixture
def picker_url(tmp_path: Path, provider: ScriptedProvider) -> Iterator[str]:
    yield from start_server(tmp_path, provider, model="openai/alpha", models=MODELS)


@pytest.fixture
async def picker_page(
    browser: Browser, picker_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[WebPage]:
    async for page in open_page(browser, picker_url, request):
        yield page


def reply_models(provider: ScriptedProvider) -> list[str]:
    return [str(r["model"]) for r in provider.requests if not is_title_request(r)]


async def test_the_picker_chooses_the_model_and_follows_the_thread(
    picker_page: WebPage, provider: ScriptedProvider
) -> None:
    web = picker_page
    picker = web.testid("model-picker")
    await expect(picker).to_be_visible()
    await expect(picker.locator("option")).to_have_text(["Alpha", "Beta"])
    await expect(picker).to_have_value("openai/alpha")

    provider.enqueue(Text("Beta here."))
    await picker.select_option("openai/beta")
    await web.send("who answers?")
    await expect(web.role("assistant").locator(".md")).to_have_text("Beta here.")
    assert reply_models(provider) == ["beta"]

    # A new chat starts on the default; going back to the thread shows its model.
    entry = web.testid("threads").locator("[data-thread-id]")
    await expect(entry).to_have_count(1)
    await web.testid("new-thread").click()
    await expect(picker).to_have_value("openai/alpha")
    provider.enqueue(Text("Alpha here."))
    await web.send("and now?")
    await expect(web.role("assistant").locator(".md")).to_have_text("Alpha here.")
    assert reply_models(provider) == ["beta", "alpha"]

    await web.page.reload()
    await expect(entry).to_have_count(2)
    await entry.nth(1).click()  # the first thread (newest is on top)
    await expect(web.role("user")).to_have_text("who answers?")
    await expect(picker).to_have_value("openai/beta")


async def test_with_one_model_there_is_no_picker(web: WebPage, provider: ScriptedProvider) -> None:
    provider.enqueue(Text("Hi."))
    await web.send("hello")
    await expect(web.role("assistant").locator(".md")).to_have_text("Hi.")
    await expect(web.testid("model-picker")).to_be_hidden()
