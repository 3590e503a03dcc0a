"""/docs works without internet: every script, style and image comes from this server."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chatkit_backend.config import load_settings

from .databases import sqlite_url
from .live import live_server

EXPECTED_TYPES = {
    ".js": "javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with live_server(load_settings(database_url=sqlite_url(tmp_path), model="offline")) as base:
        yield base


def referenced_urls(page: str) -> list[str]:
    """What the page makes the browser load: src and href attributes, Swagger UI's `url`."""
    return re.findall(r'(?:src|href)="([^"]*)"', page) + re.findall(r"url: '([^']*)'", page)


def test_docs_reference_only_this_server_and_every_asset_answers(url: str) -> None:
    page = httpx.get(f"{url}/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "http" not in page.text  # no absolute URL at all, so no other host
    references = referenced_urls(page.text)
    assert len(references) >= 4  # script, stylesheet, icon, the OpenAPI document
    for reference in references:
        assert reference.startswith("/") and not reference.startswith("//"), reference
        asset = httpx.get(f"{url}{reference}", timeout=10)
        assert asset.status_code == 200, reference
        suffix = Path(reference).suffix
        assert EXPECTED_TYPES[suffix] in asset.headers["content-type"], reference
        assert len(asset.content) > 1000, reference


def test_the_docs_page_allows_scripts_from_this_server_and_its_own_inline_one(
    url: str,
) -> None:
    page = httpx.get(f"{url}/docs", timeout=10)
    assert page.headers["x-content-type-options"] == "nosniff"
    directives = {
        d.split()[0]: d.split()[1:] for d in page.headers["content-security-policy"].split("; ")
    }
    assert directives["default-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["connect-src"] == ["'self'"]  # "Try it out" calls this server only
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert inline, "Swagger UI is started by an inline script"
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    ]
    assert directives["script-src"] == ["'self'", *hashes]


def test_there_is_one_docs_page(url: str) -> None:
    # ReDoc would fetch its logo from its CDN whatever it is told.
    assert httpx.get(f"{url}/redoc", timeout=10).status_code == 404
    assert httpx.get(f"{url}/openapi.json", timeout=10).json()["info"]["title"] == (
        "chatkit-backend"
    )
