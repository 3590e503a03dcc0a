"""CORS: the ChatKit iframe and web apps on the configured origins may call the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chatkit_backend.config import load_settings

from .live import live_server

APP = "https://app.example.com"


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", model="offline", cors_origins=APP
    )
    with live_server(settings) as base:
        yield base


def test_a_configured_origin_may_send_credentials_and_chatkit_headers(url: str) -> None:
    preflight = httpx.options(
        f"{url}/chatkit",
        headers={
            "origin": APP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, x-chatkit-anything",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP
    assert preflight.headers["access-control-allow-credentials"] == "true"
    allowed = preflight.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "x-chatkit-anything"):
        assert header in allowed
    response = httpx.get(f"{url}/api/tasks", headers={"origin": APP})
    assert response.headers["access-control-allow-origin"] == APP
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


def test_another_origin_is_not_allowed(url: str) -> None:
    preflight = httpx.options(
        f"{url}/chatkit",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    response = httpx.get(f"{url}/api/tasks", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
