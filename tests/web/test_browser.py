"""The built-in page in a real browser, against a real server and the scripted provider."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from playwright.async_api import Browser, Route, expect

from chatkit_backend.web.routes import CHATKIT_CDN, CHATKIT_ORIGIN

from ..live import ChatKitClient
from ..scripted_provider import Call, Malformed, ScriptedProvider, Text, ToolCalls
from .conftest import PHONE, WebPage, open_page, reply_stream, start_server

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


async def test_a_reply_streams_in_and_the_thread_comes_back_after_a_reload(
    web: WebPage, provider: ScriptedProvider
) -> None:
    reply = "Hello **there**, this is `code` and a [link](https://example.com/x)."
    provider.enqueue(Text(reply, chunk_chars=3, delay=0.04))
    await web.send("hi there")

    user = web.role("user")
    await expect(user).to_have_text("hi there")
    # Seen part-way: the text grows while the stream is open.
    await web.page.wait_for_function(
        """() => {
            const node = document.querySelector('[data-role="assistant"].streaming');
            return node && node.textContent.length > 5 && !node.textContent.includes('a link');
        }"""
    )
    assistant = web.role("assistant")
    await expect(assistant).to_contain_text("Hello there, this is code and a link.")
    await expect(assistant).not_to_have_class(re.compile(r"\bstreaming\b"))
    await expect(assistant.locator("strong")).to_have_text("there")
    await expect(assistant.locator("code")).to_have_text("code")
    link = assistant.locator("a")
    await expect(link).to_have_attribute("href", "https://example.com/x")
    assert "noopener" in (await link.get_attribute("rel") or "")

    entry = web.testid("threads").locator("[data-thread-id]")
    await expect(entry).to_have_count(1)
    await expect(entry).to_contain_text("Scripted title")
    thread_id = await entry.get_attribute("data-thread-id")
    assert thread_id and thread_id.startswith("thr_")

    # A second thread, then back and forth between the two.
    provider.enqueue(Text("The second answer."))
    await web.testid("new-thread").click()
    await expect(web.testid("messages").locator("[data-role]")).to_have_count(0)
    await web.send("another question")
    await expect(web.role("assistant").locator(".md")).to_have_text("The second answer.")
    await expect(entry).to_have_count(2)

    await web.page.reload()
    await expect(entry).to_have_count(2)
    first = web.testid("threads").locator(f'[data-thread-id="{thread_id}"]')
    await first.click()
    await expect(web.role("user")).to_have_text("hi there")
    await expect(web.role("assistant")).to_contain_text("Hello there")
    await expect(web.page.locator("#thread-title")).to_have_text("Scripted title")

    second = entry.nth(0)  # newest first
    assert await second.get_attribute("data-thread-id") != thread_id
    await second.click()
    await expect(web.role("user")).to_have_text("another question")
    await expect(web.role("assistant").locator(".md")).to_have_text("The second answer.")


async def test_stop_aborts_the_stream_closes_the_provider_stream_and_keeps_the_partial_reply(
    web: WebPage, provider: ScriptedProvider
) -> None:
    words = "".join(f"word{i:03d} " for i in range(200))
    provider.enqueue(Text(words, chunk_chars=6, delay=0.03))
    await web.send("tell me a long story")

    stop = web.testid("stop")
    await expect(stop).to_be_visible()
    await expect(web.role("assistant")).to_contain_text("word010")
    await stop.click()

    record = await reply_stream(provider)
    assert record.client_disconnected, "Stop must close the provider's stream"
    assert record.chunks_sent < record.chunks_planned

    assistant = web.role("assistant")
    await expect(assistant).to_have_class(re.compile(r"\bstopped\b"))
    partial = await assistant.locator(".md").inner_text()
    assert partial.startswith("word000 word001")
    assert "word199" not in partial
    await expect(stop).to_be_hidden()
    await expect(web.testid("send")).to_be_visible()
    await expect(web.testid("error")).to_be_hidden()

    # The page can go on: the thread takes the next message.
    provider.enqueue(Text("Back again."))
    await web.send("are you there?")
    await expect(web.role("assistant").last.locator(".md")).to_have_text("Back again.")


async def test_a_task_widget_renders_and_its_done_button_completes_the_task(
    web: WebPage, provider: ScriptedProvider, rest: httpx.AsyncClient
) -> None:
    created = await rest.post("/api/tasks", json={"title": "Buy oat milk", "priority": "high"})
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    provider.enqueue(ToolCalls([Call("list_tasks", {"status": "all"})]), Text("Your tasks:"))
    await web.send("show my tasks")

    await expect(web.role("activity")).to_contain_text("Found 1 task")
    widget = web.role("widget")
    row = widget.locator(f'[data-key="task-{task_id}"]')
    await expect(row).to_contain_text("Buy oat milk")
    await expect(row.locator(".w-badge")).to_have_text("high")
    await row.get_by_role("button", name="Done").click()

    await expect(row.get_by_role("button", name="Reopen")).to_be_visible()
    await expect(row.locator(".strike")).to_contain_text("Buy oat milk")
    task = (await rest.get(f"/api/tasks/{task_id}")).json()
    assert task["completed"] is True

    await row.get_by_role("button", name="Reopen").click()
    await expect(row.get_by_role("button", name="Done")).to_be_visible()
    assert (await rest.get(f"/api/tasks/{task_id}")).json()["completed"] is False


async def test_html_from_the_user_or_the_model_is_shown_as_text(
    web: WebPage, provider: ScriptedProvider
) -> None:
    payload = "<img src=x onerror=\"window.__xss='user'\"><script>window.__xss='s'</script>"
    provider.enqueue(
        Text(
            "Echo <img src=x onerror=window.__xss=1> <script>window.__xss=2</script> "
            "<b>not bold</b> [bad](javascript:window.__xss=3) [ok](https://example.com)",
            chunk_chars=7,
        )
    )
    await web.send(payload)

    assistant = web.role("assistant")
    await expect(assistant.locator("a")).to_have_count(1)
    await expect(web.role("user")).to_have_text(payload)
    await expect(assistant).to_contain_text("Echo <img src=x onerror=window.__xss=1>")
    await expect(assistant).to_contain_text("<script>window.__xss=2</script> <b>not bold</b>")
    await expect(assistant).to_contain_text("bad")
    messages = web.testid("messages")
    for tag in ("img", "script", "b", "iframe"):
        await expect(messages.locator(tag)).to_have_count(0)
    await expect(messages.locator("a")).to_have_attribute("href", "https://example.com/")
    assert await web.page.evaluate("() => window.__xss") is None
    # The page stays usable after it.
    await expect(web.testid("composer")).to_be_enabled()


async def test_feedback_retry_rename_and_delete(
    web: WebPage, provider: ScriptedProvider, web_url: str
) -> None:
    provider.enqueue(Text("First answer."), Text("Second answer."))
    await web.send("question")
    assistant = web.role("assistant")
    await expect(assistant.locator(".md")).to_have_text("First answer.")

    thumbs_up = assistant.locator('[data-feedback="positive"]')
    await thumbs_up.click()
    await expect(thumbs_up).to_have_attribute("aria-pressed", "true")

    await assistant.get_by_test_id("retry").click()
    await expect(assistant.locator(".md")).to_have_text("Second answer.")
    await expect(assistant).to_have_count(1)
    await expect(web.role("user")).to_have_count(1)

    await web.testid("rename").click()
    await web.page.locator("#rename-input").fill("Groceries")
    await web.page.locator("#rename-input").press("Enter")
    await expect(web.page.locator("#thread-title")).to_have_text("Groceries")
    entry = web.testid("threads").locator("[data-thread-id]")
    await expect(entry.locator(".thread-entry-title")).to_have_text("Groceries")

    client = ChatKitClient(web_url)
    try:
        thread_id = await entry.get_attribute("data-thread-id")
        thread = await client.call("threads.get_by_id", thread_id=thread_id)
        assert thread["title"] == "Groceries"
        items = thread["items"]["data"]
        texts = [i["content"][0]["text"] for i in items if i["type"].endswith("message")]
        assert texts == ["question", "Second answer."]

        await web.testid("delete").click()
        await web.testid("delete").click()  # the second click confirms
        await expect(entry).to_have_count(0)
        await expect(web.testid("messages").locator("[data-role]")).to_have_count(0)
        assert (await client.call("threads.list", limit=10, order="desc"))["data"] == []
    finally:
        await client.aclose()


async def test_a_refused_message_shows_the_servers_reason_and_keeps_the_text(
    browser: Browser,
    provider: ScriptedProvider,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    provider.enqueue(Text("One."))
    for url in start_server(tmp_path, provider, rate_limit_messages_per_minute=1):
        async for web in open_page(browser, url, request):
            web.allowed_errors.append("status of 429")
            await web.send("first")
            await expect(web.role("assistant").locator(".md")).to_have_text("One.")
            await web.send("second")
            error = web.testid("error")
            await expect(error).to_be_visible()
            await expect(error).to_contain_text("try again in")
            await expect(web.testid("composer")).to_have_value("second")
            await expect(web.role("user")).to_have_count(1)


@pytest.fixture
def auth_url(tmp_path: Path, provider: ScriptedProvider) -> Iterator[str]:
    yield from start_server(tmp_path, provider, better_auth_secret=SECRET)


@pytest.fixture
async def auth_web(
    browser: Browser, auth_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[WebPage]:
    async for page in open_page(browser, auth_url, request):
        yield page


async def test_a_401_asks_for_a_token_which_then_signs_every_request(
    auth_web: WebPage, provider: ScriptedProvider
) -> None:
    web = auth_web
    web.allowed_errors.append("status of 401")
    panel = web.testid("token-panel")
    await expect(panel).to_be_visible()
    await expect(panel).to_contain_text("A bearer token is required.")

    await web.testid("token-input").fill("not-a-jwt")
    await web.testid("token-save").click()
    await expect(panel).to_contain_text("Invalid bearer token")

    token = jwt.encode({"sub": "u1", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    await web.testid("token-input").fill(token)
    await web.testid("token-save").click()
    await expect(panel).to_be_hidden()
    provider.enqueue(Text("Signed in and answering."))
    await web.send("hello")
    await expect(web.role("assistant").locator(".md")).to_have_text("Signed in and answering.")
    assert await web.page.evaluate("() => sessionStorage.getItem('chatkit.token')") == token

    # A reload keeps the token (same tab) and the thread.
    await web.page.reload()
    await expect(panel).to_be_hidden()
    await expect(web.testid("threads").locator("[data-thread-id]")).to_have_count(1)


async def test_on_a_phone_the_thread_list_folds_away(
    browser: Browser,
    web_url: str,
    provider: ScriptedProvider,
    request: pytest.FixtureRequest,
) -> None:
    async for web in open_page(browser, web_url, request, viewport=PHONE):
        provider.enqueue(Text("- one\n- two\n\n1. first\n2. second\n\n```\ncode block\n```"))
        threads = web.testid("threads")
        await expect(threads).not_to_be_in_viewport()
        await web.send("a list please")
        assistant = web.role("assistant")
        await expect(assistant.locator("ul li")).to_have_count(2)
        await expect(assistant.locator("ol li")).to_have_count(2)
        await expect(assistant.locator("pre code")).to_have_text("code block")

        await web.page.get_by_label("Show conversations").click()
        await expect(threads).to_be_in_viewport()
        await web.testid("new-thread").click()
        await expect(threads).not_to_be_in_viewport()
        await expect(web.testid("messages").locator("[data-role]")).to_have_count(0)
        await web.page.get_by_label("Show conversations").click()
        await threads.locator("[data-thread-id]").first.click()
        await expect(assistant.locator("ul li")).to_have_count(2)
        await expect(threads).not_to_be_in_viewport()
        await web.page.wait_for_timeout(300)  # the drawer's slide, for the screenshot


async def test_a_failed_reply_says_so_and_retry_answers_again(
    web: WebPage, provider: ScriptedProvider
) -> None:
    provider.enqueue(Malformed(), Text("Recovered."))
    await web.send("hello")
    error = web.testid("error")
    await expect(error).to_contain_text("failed to answer")
    await expect(web.role("user")).to_have_text("hello")
    await error.get_by_role("button", name="Retry").click()
    await expect(web.role("assistant").locator(".md")).to_have_text("Recovered.")
    await expect(error).to_be_hidden()
    await expect(web.role("user")).to_have_count(1)


async def test_the_thread_list_pages_with_load_more(
    web: WebPage, provider: ScriptedProvider, web_url: str
) -> None:
    client = ChatKitClient(web_url)
    try:
        for n in range(22):
            provider.enqueue(Text(f"answer {n}"))
            await client.create_thread(f"thread {n}")
    finally:
        await client.aclose()
    await web.page.reload()
    entries = web.testid("threads").locator("[data-thread-id]")
    await expect(entries).to_have_count(20)
    await web.testid("load-more").click()
    await expect(entries).to_have_count(22)
    await expect(web.testid("load-more")).to_be_hidden()
    ids = [await entries.nth(i).get_attribute("data-thread-id") for i in range(22)]
    assert len(set(ids)) == 22
    # Newest first: the last one created heads the list.
    await entries.first.click()
    await expect(web.role("user")).to_have_text("thread 21")


MARKDOWN_CASES = [
    ("plain <b>text</b> & more", "<p>plain &lt;b&gt;text&lt;/b&gt; &amp; more</p>"),
    (
        "**bold** and *it* and _it_ and `a<b>`",
        (
            "<p><strong>bold</strong> and <em>it</em> and <em>it</em> and "
            "<code>a&lt;b&gt;</code></p>"
        ),
    ),
    ("snake_case_name and a__b__c", "<p>snake_case_name and a__b__c</p>"),
    ("line one\nline two\n\nnext", "<p>line one<br>line two</p><p>next</p>"),
    (
        "- a\n- b\n  - c\n\n3. x\n4. y",
        (
            "<ul><li><span>a</span></li><li><span>b</span><ul><li><span>c</span></li></ul></li></ul>"
            '<ol start="3"><li><span>x</span></li><li><span>y</span></li></ol>'
        ),
    ),
    (
        "```js\n<script>x()</script>\n```",
        ('<pre><code data-lang="js">&lt;script&gt;x()&lt;/script&gt;</code></pre>'),
    ),
    ("```\nstill streaming", "<pre><code>still streaming</code></pre>"),
    ("[a](javascript:alert(1)) [b](data:text/html,x) [c](/relative)", "<p>a) b c</p>"),
    (
        "see https://example.com/a_b.",
        (
            '<p>see <a href="https://example.com/a_b" target="_blank" '
            'rel="noopener noreferrer nofollow">https://example.com/a_b</a>.</p>'
        ),
    ),
    (
        "[**x**](http://e.com)",
        (
            '<p><a href="http://e.com/" target="_blank" rel="noopener noreferrer nofollow">'
            "<strong>x</strong></a></p>"
        ),
    ),
    (
        "# Title\n> quoted",
        (
            '<p class="md-heading md-h1"><strong>Title</strong></p>'
            "<blockquote><p>quoted</p></blockquote>"
        ),
    ),
    (r"\*not italic\*", "<p>*not italic*</p>"),
]


async def test_the_markdown_renderer_only_builds_whitelisted_elements(web: WebPage) -> None:
    rendered = await web.page.evaluate(
        """async (sources) => {
            const { renderMarkdown } = await import('/web/markdown.js');
            return sources.map((source) => {
                const box = document.createElement('div');
                box.append(renderMarkdown(source));
                return box.innerHTML;
            });
        }""",
        [source for source, _ in MARKDOWN_CASES],
    )
    assert rendered == [html for _, html in MARKDOWN_CASES]


async def two_threads(provider: ScriptedProvider, web_url: str) -> tuple[str, str]:
    client = ChatKitClient(web_url)
    try:
        ids = []
        for name in ("first", "second"):
            provider.enqueue(Text(f"answer to {name}"))
            thread_id, _ = await client.create_thread(name)
            ids.append(thread_id)
    finally:
        await client.aclose()
    return ids[0], ids[1]


async def open_entry(web: WebPage, thread_id: str, user_text: str) -> None:
    await web.testid("threads").locator(f'[data-thread-id="{thread_id}"]').click()
    await expect(web.role("user")).to_have_text(user_text)


async def test_a_delete_confirmation_belongs_to_its_thread_and_lapses(
    web: WebPage, provider: ScriptedProvider, web_url: str
) -> None:
    first, second = await two_threads(provider, web_url)
    # The page's clock stands still unless the test moves it: no question lapses by itself
    # while the test checks that a view change drops it, and nothing waits on real time.
    await web.page.clock.install()
    await web.page.reload()
    await web.page.clock.pause_at(time.time() + 1)
    entries = web.testid("threads").locator("[data-thread-id]")
    await expect(entries).to_have_count(2)
    delete = web.testid("delete")

    # Asked on the first thread, then the user opens the second: one click there only asks.
    await open_entry(web, first, "first")
    await delete.click()
    await expect(delete).to_have_text("Delete?")
    await open_entry(web, second, "second")
    await expect(delete).to_have_text("Delete")
    await delete.click()
    await expect(delete).to_have_text("Delete?")
    await expect(entries).to_have_count(2)

    # A new chat drops the question too.
    await web.testid("new-thread").click()
    await open_entry(web, second, "second")
    await expect(delete).to_have_text("Delete")
    await delete.click()
    await expect(delete).to_have_text("Delete?")
    await expect(entries).to_have_count(2)

    # Unanswered, the question lapses.
    await delete.click()  # the armed confirmation from above: deletes the second thread
    await expect(entries).to_have_count(1)
    await open_entry(web, first, "first")
    await delete.click()
    await expect(delete).to_have_text("Delete?")
    await web.page.clock.fast_forward(10_000)
    await expect(delete).to_have_text("Delete")
    await delete.click()
    await expect(delete).to_have_text("Delete?")
    await expect(entries).to_have_count(1)

    client = ChatKitClient(web_url)
    try:
        listed = await client.call("threads.list", limit=10, order="desc")
        assert [thread["id"] for thread in listed["data"]] == [first]
    finally:
        await client.aclose()


async def test_rename_leaves_no_button_lit_under_the_resting_pointer(
    web: WebPage, provider: ScriptedProvider, web_url: str
) -> None:
    first, _ = await two_threads(provider, web_url)
    await web.page.reload()
    await open_entry(web, first, "first")
    rename = web.testid("rename")
    quiet = await rename.evaluate("b => getComputedStyle(b).backgroundColor")

    await rename.click()
    await web.page.locator("#rename-input").fill("Groceries")
    await web.page.locator("#rename-input").press("Enter")
    await expect(web.page.locator("#thread-title")).to_have_text("Groceries")
    # The button comes back under the pointer that clicked it; the browser counts it as
    # hovered, but the user did not point at it: it must look like its neighbour.
    await web.page.wait_for_function(
        "() => document.querySelector('[data-testid=rename]').matches(':hover')"
    )
    assert await rename.evaluate("b => getComputedStyle(b).backgroundColor") == quiet
    assert not await rename.evaluate("b => b.matches(':focus')")

    # Once the pointer moves, hovering lights it up again.
    box = await rename.bounding_box()
    assert box is not None
    await web.page.mouse.move(box["x"] + 5, box["y"] + 5)
    await expect(rename).not_to_have_css("background-color", quiet)


async def test_a_stale_widgets_button_keeps_the_scroll_position(
    web: WebPage, provider: ScriptedProvider, rest: httpx.AsyncClient
) -> None:
    created = await rest.post("/api/tasks", json={"title": "Buy oat milk"})
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    provider.enqueue(ToolCalls([Call("list_tasks", {"status": "all"})]), Text("Your tasks:"))
    await web.send("show my tasks")
    row = web.role("widget").locator(f'[data-key="task-{task_id}"]')
    await expect(row).to_contain_text("Buy oat milk")
    long_reply = "\n\n".join(f"Paragraph {n} of a long answer." for n in range(40))
    for n in range(2):
        provider.enqueue(Text(long_reply))
        await web.send(f"tell me more {n}")
        await expect(web.role("assistant").last).to_contain_text("Paragraph 39")
    await expect(web.testid("stop")).to_be_hidden()

    # The user scrolls back up to the widget, far from the bottom, and clicks Done.
    await row.scroll_into_view_if_needed()
    scroller = web.page.locator("#scroller")
    gap = await scroller.evaluate("s => s.scrollHeight - s.scrollTop - s.clientHeight")
    assert gap > 400
    before = await row.evaluate("r => r.getBoundingClientRect().top")
    await row.get_by_role("button", name="Done").click()
    await expect(row.get_by_role("button", name="Reopen")).to_be_visible()
    await expect(web.testid("stop")).to_be_hidden()
    after = await row.evaluate("r => r.getBoundingClientRect().top")
    assert abs(after - before) < 1, f"the view moved from {before} to {after}"
    await expect(row).to_be_in_viewport()


# Stands in for OpenAI's CDN, which tests cannot reach: a loader shaped like the real one
# (a custom element whose shadow root holds an inline <style> and an iframe from the CDN, and
# which makes the API calls through the page's `api.fetch`).
CHATKIT_STAND_IN = """
customElements.define('openai-chatkit', class extends HTMLElement {
  connectedCallback() {
    const shadow = this.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = ':host { display: block } iframe { border: 0; width: 100%; height: 100% }';
    const frame = document.createElement('iframe');
    frame.src = 'CDN_ORIGIN/deployments/chatkit/index-test.html';
    shadow.append(style, frame);
  }
  async setOptions(options) {
    const body = JSON.stringify({ type: 'threads.list', params: { limit: 5, order: 'desc' } });
    const res = await options.api.fetch(options.api.url, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body,
    });
    this.dataset.status = String(res.status);
  }
});
"""


async def test_chatkit_js_runs_the_cdn_component_under_its_policy(
    web: WebPage, web_url: str
) -> None:
    async def cdn(route: Route) -> None:
        if route.request.url == CHATKIT_CDN:
            await route.fulfill(
                content_type="text/javascript",
                body=CHATKIT_STAND_IN.replace("CDN_ORIGIN", CHATKIT_ORIGIN),
            )
        else:
            await route.fulfill(content_type="text/html", body="<p id=inside>ChatKit frame</p>")

    await web.page.route(f"{CHATKIT_ORIGIN}/**", cdn)
    await web.page.add_init_script(
        """window.__blocked = [];
        document.addEventListener('securitypolicyviolation',
            (e) => window.__blocked.push(`${e.violatedDirective} ${e.blockedURI}`));"""
    )
    await web.page.goto(web_url + "/chatkit-js")
    chatkit = web.page.locator("#chatkit")
    await expect(chatkit).to_have_attribute("data-status", "200")
    frame = web.page.frame_locator("#chatkit iframe")
    await expect(frame.locator("#inside")).to_have_text("ChatKit frame")
    await expect(web.page.locator("#unavailable")).to_be_hidden()
    assert await web.page.evaluate("() => window.__blocked") == []


async def test_chatkit_js_says_so_when_the_cdn_is_out_of_reach(web: WebPage, web_url: str) -> None:
    web.allowed_errors.append("Failed to load resource")
    await web.page.route(f"{CHATKIT_ORIGIN}/**", lambda route: route.abort("internetdisconnected"))
    await web.page.goto(web_url + "/chatkit-js")
    unavailable = web.page.locator("#unavailable")
    await expect(unavailable).to_be_visible()
    await expect(unavailable).to_contain_text("needs internet access")
    await expect(unavailable.get_by_role("link")).to_have_attribute("href", "/")
