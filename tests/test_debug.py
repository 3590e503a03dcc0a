"""GET /debug/threads exists only with DEBUG=true, and shows only the caller's threads."""

from __future__ import annotations

from pathlib import Path

import httpx

from chatkit_backend.config import load_settings

from .live import ChatKitClient, live_server


async def test_debug_threads_lists_items_when_enabled(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with live_server(load_settings(database_url=db, model="offline", debug=True)) as url:
        client = ChatKitClient(url)
        thread_id, _ = await client.create_thread("hello")
        await client.send(thread_id, "again")
        listing = (await client.http.get("/debug/threads")).json()
        await client.aclose()
    items = listing[thread_id]["items"]
    assert listing[thread_id]["count"] == 4
    assert [i["type"] for i in items] == ["user_message", "assistant_message"] * 2
    assert len({i["id"] for i in items}) == 4, "no message overwrote another"
    assert items[0]["content"] == ["hello"]


def test_debug_threads_is_404_by_default(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with live_server(load_settings(database_url=db, model="offline")) as url:
        assert httpx.get(f"{url}/debug/threads").status_code == 404
