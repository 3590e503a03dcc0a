"""Shutdown with a reply still streaming once the grace is over: the run is stopped, its
partial reply kept, its thread left free; and the app's drain of its runs.

The server runs as `chatkit-backend serve` runs it (uvicorn with a graceful-shutdown
timeout, then the app's own drain of its runs, app.SHUTDOWN_GRACE_SECONDS), in a thread
and with both limits cut to about a second, so the test waits seconds rather than the
production 15 + 10. Setting `should_exit` is what uvicorn's SIGTERM handler does.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import uvicorn

from chatkit_backend import app as app_module
from chatkit_backend.app import create_app
from chatkit_backend.chat.streaming import RunTasks

from .conftest import scripted_settings
from .live import ChatKitClient, assistant_text, free_port, live_server, start_stream, user_input
from .scripted_provider import ScriptedProvider, Text

LONG = Text(" ".join(f"w{i}" for i in range(400)), chunk_chars=4, delay=0.05)


async def test_a_stream_still_running_when_the_grace_runs_out_is_stopped_and_kept(
    database_url: str, provider: ScriptedProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "SHUTDOWN_GRACE_SECONDS", 0.5)
    settings = scripted_settings(database_url, provider)
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        await asyncio.sleep(0.02)

    client = ChatKitClient(f"http://127.0.0.1:{port}")
    provider.enqueue(LONG)
    reader, thread_id = await start_stream(
        client, {"type": "threads.create", "params": {"input": user_input("a long story")}}
    )
    server.should_exit = True
    await asyncio.to_thread(thread.join, 30)
    assert not thread.is_alive(), "the server stopped"
    # The reply could not finish: the client's stream is cut.
    (outcome,) = await asyncio.gather(reader, return_exceptions=True)
    assert isinstance(outcome, httpx.HTTPError), outcome
    await client.aclose()
    record = await provider.wait_for_stream_end_async(-1, timeout=5)
    assert record.client_disconnected and not record.finished, "the provider stream closed"

    # A new server on the same database: the partial reply is there, the thread is free.
    provider.enqueue(Text("Back again."))
    with live_server(settings) as url:
        client = ChatKitClient(url)
        items = await client.items(thread_id)
        partial = [i for i in items if i["type"] == "assistant_message"]
        assert len(partial) == 1
        text = partial[0]["content"][0]["text"]
        assert text.startswith("w0 w1") and len(text) < len(LONG.text)
        assert assistant_text(await client.send(thread_id, "go on")) == "Back again."
        await client.aclose()


async def test_drain_lets_runs_finish_within_the_grace_then_stops_the_rest() -> None:
    """The app's last step before closing the database: runs still going after the grace
    are cancelled, and drain returns only once their clean-up (saving the partial reply)
    is done."""
    tasks = RunTasks()
    events: list[str] = []

    async def quick() -> None:
        await asyncio.sleep(0.05)
        events.append("quick finished")

    async def endless() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.2)  # the partial reply being saved
            events.append("endless cleaned up")

    for run in (quick(), endless()):
        tasks.add(asyncio.create_task(run))
    await tasks.drain(0.5)
    assert events == ["quick finished", "endless cleaned up"]
    await tasks.drain(0.5)  # nothing left: returns at once
