"""GET /debug/threads: the caller's threads with their items, only when DEBUG=true.

The seeds use it to check that messages do not overwrite each other. It shows the
caller's own data only, and answers 404 unless debugging is switched on.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from ..auth import current_context
from ..config import Settings
from ..context import RequestContext
from ..deps import get_settings, get_store
from ..errors import NotFound
from .store import SQLStore

router = APIRouter(include_in_schema=False)

MAX_THREADS = 50


def _texts(item: Any) -> list[str]:
    content = getattr(item, "content", None)
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [part.text for part in content if isinstance(getattr(part, "text", None), str)]


@router.get("/debug/threads")
async def debug_threads(
    ctx: Annotated[RequestContext, Depends(current_context)],
    settings: Annotated[Settings, Depends(get_settings)],
    store: Annotated[SQLStore, Depends(get_store)],
) -> dict[str, Any]:
    if not settings.debug:
        raise NotFound("Not Found")
    threads = await store.load_threads(MAX_THREADS, None, "desc", ctx)
    result: dict[str, Any] = {}
    for thread in threads.data:
        page = await store.load_thread_items(thread.id, None, 100, "asc", ctx)
        items = [{"id": item.id, "type": item.type, "content": _texts(item)} for item in page.data]
        result[thread.id] = {"title": thread.title, "items": items, "count": len(items)}
    return result
