"""GET / (the built-in chat page), its static files, and GET /chatkit-js (the official UI).

Both pages are public: they hold no data, and every API call they make is authenticated.
"""

from __future__ import annotations

import html
import re
from functools import cache
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse, Response

from ..config import Settings
from ..deps import get_settings
from ..errors import NotFound

CHATKIT_ORIGIN = "https://cdn.platform.openai.com"
CHATKIT_CDN = f"{CHATKIT_ORIGIN}/deployments/chatkit/chatkit.js"

# Nothing either page loads comes from elsewhere, nothing may frame them, no plugin, no <base>,
# no form posts.
_LOCKED = [
    "default-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
]
# The page builds its DOM with textContent only; this policy is the second line of defence:
# no inline script or style, no foreign origin.
PAGE_CSP = "; ".join(
    [
        *_LOCKED,
        "script-src 'self'",
        "style-src 'self'",
        # blob: the thumbnails of files picked for a message, before they are sent.
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
    ]
)
# The official web component: its script and the iframe it renders come from OpenAI's CDN
# (the chat UI runs inside that frame, under the CDN's own policy); the frame asks this page
# to make the API calls, so they go to this server only. The element styles its shadow root
# with an inline <style>, hence 'unsafe-inline' for styles (never for scripts).
CHATKIT_JS_CSP = "; ".join(
    [
        *_LOCKED,
        f"script-src 'self' {CHATKIT_ORIGIN}",
        f"frame-src {CHATKIT_ORIGIN}",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self'",
        "connect-src 'self'",
    ]
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors 'none' for browsers without CSP level 2
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# OpenAI ties a domain key to the sites that may embed its frame: let the frame's request say
# which site this is (the origin, never the path) rather than send no Referer at all.
CHATKIT_JS_HEADERS = {
    **SECURITY_HEADERS,
    "Referrer-Policy": "strict-origin",
    "Content-Security-Policy": CHATKIT_JS_CSP,
}
# Any placeholder works on localhost; a deployment registers its domain with OpenAI.
PLACEHOLDER_DOMAIN_KEY = "local-dev"

_MEDIA_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}
_ASSET_NAME = re.compile(r"^[a-z0-9-]+\.(js|css|svg)$")

router = APIRouter(tags=["web"], include_in_schema=False)


@cache
def _static(name: str) -> bytes | None:
    resource = files("chatkit_backend.web").joinpath("static", name)
    return resource.read_bytes() if resource.is_file() else None


@router.api_route("/", methods=["GET", "HEAD"])
async def index() -> HTMLResponse:
    page = _static("index.html")
    assert page is not None, "the package ships web/static/index.html"
    return HTMLResponse(page, headers={**SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP})


@router.api_route("/web/{name}", methods=["GET", "HEAD"])
async def asset(name: Annotated[str, Path(max_length=64)]) -> Response:
    match = _ASSET_NAME.match(name)
    body = _static(name) if match else None
    if match is None or body is None:
        raise NotFound(f"No such file: {name}", code="not_found")
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP}
    return Response(body, media_type=_MEDIA_TYPES[match.group(1)], headers=headers)


_CHATKIT_JS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="chatkit-domain-key" content="{domain_key}">
<title>ChatKit</title>
<link rel="icon" href="/web/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/web/chatkit-js.css">
<script src="{cdn}" async></script>
<script type="module" src="/web/chatkit-js.js"></script>
</head>
<body>
<p class="unavailable" id="unavailable" hidden>OpenAI's ChatKit UI could not be loaded from
cdn.platform.openai.com: it needs internet access. <a href="/">The built-in page</a> works
without it.</p>
<openai-chatkit id="chatkit"></openai-chatkit>
</body>
</html>
"""


@router.api_route("/chatkit-js", methods=["GET", "HEAD"])
async def chatkit_js(settings: Annotated[Settings, Depends(get_settings)]) -> HTMLResponse:
    """OpenAI's ChatKit web component against this server (needs internet and a domain key)."""
    domain_key = settings.chatkit_domain_key or PLACEHOLDER_DOMAIN_KEY
    page = _CHATKIT_JS_PAGE.format(domain_key=html.escape(domain_key), cdn=CHATKIT_CDN)
    return HTMLResponse(page, headers=CHATKIT_JS_HEADERS)
