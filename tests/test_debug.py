"""GET /debug/threads exists only with DEBUG=true, and shows only the caller's threads."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt

from chatkit_backend.config import load_settings

from .databases import sqlite_url
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


async def test_debug_threads_shows_each_user_only_their_own(tmp_path: Path) -> None:
    secret = "debug-test-secret-0123456789abcdef"
    settings = load_settings(
        database_url=sqlite_url(tmp_path), model="offline", debug=True, better_auth_secret=secret
    )

    def bearer(user: str) -> dict[str, str]:
        token = jwt.encode({"sub": user, "exp": int(time.time()) + 600}, secret, "HS256")
        return {"Authorization": f"Bearer {token}"}

    with live_server(settings) as url:
        alice, bob = ChatKitClient(url, bearer("alice")), ChatKitClient(url, bearer("bob"))
        alice_thread, _ = await alice.create_thread("alice's words")
        bob_thread, _ = await bob.create_thread("bob's words")
        seen = {
            name: (await client.http.get("/debug/threads")).json()
            for name, client in (("alice", alice), ("bob", bob))
        }
        anonymous = await alice.http.get("/debug/threads", headers={"Authorization": ""})
        await alice.aclose()
        await bob.aclose()
    assert list(seen["alice"]) == [alice_thread]
    assert list(seen["bob"]) == [bob_thread]
    assert seen["alice"][alice_thread]["items"][0]["content"] == ["alice's words"]
    assert seen["bob"][bob_thread]["items"][0]["content"] == ["bob's words"]
    assert anonymous.status_code == 401
