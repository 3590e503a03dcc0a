"""GET /docs: the OpenAPI page, with every script and style served from here.

FastAPI's own page loads Swagger UI from a CDN, so without internet it is blank.
fastapi-offline ships the bundle in its package; it is served under /docs/assets, and
the page's policy allows scripts from this server only. There is no /redoc: ReDoc
always fetches its logo from its own CDN, and one docs page is enough.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
# Swagger UI otherwise shows a badge fetched from validator.swagger.io.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
DOCS_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# Swagger UI sets inline styles; scripts come from this server, plus the one inline
# script FastAPI's page starts it with, allowed by its hash.
_POLICY = [
    "default-src 'none'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
]
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _page(html: str) -> HTMLResponse:
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]
    policy = "; ".join([" ".join(["script-src 'self'", *hashes]), *_POLICY])
    return HTMLResponse(html, headers={**DOCS_HEADERS, "Content-Security-Policy": policy})


def install_docs(app: FastAPI) -> None:
    """Serve /docs and its assets; `app` was made with docs_url=redoc_url=None."""
    assert app.openapi_url is not None
    openapi_url = app.openapi_url
    app.mount(ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix, links must carry it (as FastAPI's do).
        root = str(request.scope.get("root_path", "")).rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
        return _page(bytes(page.body).decode())
