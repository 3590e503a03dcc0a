"""Authentication: turns a request into a RequestContext.

Until JWT verification is configured the server runs as one local user, which is
only allowed on a loopback address (the CLI enforces that).
"""

from __future__ import annotations

from fastapi import Request

from .context import RequestContext

LOCAL_USER_ID = "local"


async def current_context(request: Request) -> RequestContext:
    """The RequestContext of the caller (FastAPI dependency)."""
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        return RequestContext(user_id=LOCAL_USER_ID, request_id=request_id)
    return RequestContext(user_id=LOCAL_USER_ID)
