"""The page's routes over HTTP: public, shipped in the package, under a strict CSP."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from chatkit_backend.app import create_app
from chatkit_backend.config import load_settings
from chatkit_backend.web.routes import CHATKIT_CDN, CHATKIT_ORIGIN

from ..databases import sqlite_url

STATIC = files("chatkit_backend.web").joinpath("static")
SECRET = "s" * 40


async def get(tmp_path: Path, path: str, **settings: object) -> httpx.Response:
    app = create_app(load_settings(database_url=sqlite_url(tmp_path), model="offline", **settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


def policy(response: httpx.Response) -> dict[str, list[str]]:
    return {
        directive.split()[0]: directive.split()[1:]
        for directive in response.headers["content-security-policy"].split("; ")
    }


async def test_the_page_is_public_and_under_a_strict_content_security_policy(
    tmp_path: Path,
) -> None:
    response = await get(tmp_path, "/", better_auth_secret=SECRET)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = policy(response)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:", "blob:"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert 'data-testid="composer"' in response.text


@pytest.mark.parametrize(
    ("name", "media_type"),
    [("app.js", "text/javascript"), ("style.css", "text/css"), ("icon.svg", "image/svg+xml")],
)
async def test_static_files_are_served_from_the_package(
    tmp_path: Path, name: str, media_type: str
) -> None:
    response = await get(tmp_path, f"/web/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.content == STATIC.joinpath(name).read_bytes()


@pytest.mark.parametrize("path", ["/web/nope.js", "/web/index.html", "/web/..%2Froutes.py"])
async def test_only_known_static_files_are_served(tmp_path: Path, path: str) -> None:
    response = await get(tmp_path, path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_the_page_has_no_inline_script_or_style_and_never_parses_html() -> None:
    page = STATIC.joinpath("index.html").read_text()
    assert all(re.search(r"\bsrc=", tag) for tag in re.findall(r"<script[^>]*>", page))
    assert "<style" not in page
    assert not re.search(r"\sstyle=", page)
    assert not re.search(r"\son[a-z]+=", page)
    for script in STATIC.iterdir():
        if script.name.endswith(".js"):
            source = script.read_text()
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
                assert sink not in source, f"{script.name} uses {sink}"


async def test_chatkit_js_mounts_the_official_component_with_a_placeholder_key(
    tmp_path: Path,
) -> None:
    response = await get(tmp_path, "/chatkit-js", better_auth_secret=SECRET)
    assert response.status_code == 200
    assert f'<script src="{CHATKIT_CDN}"' in response.text
    assert "<openai-chatkit" in response.text
    assert '<meta name="chatkit-domain-key" content="local-dev">' in response.text


async def test_chatkit_js_uses_the_configured_domain_key_escaped(tmp_path: Path) -> None:
    response = await get(tmp_path, "/chatkit-js", chatkit_domain_key='dk_1"><script>')
    assert 'content="dk_1&quot;&gt;&lt;script&gt;"' in response.text
    assert "<script>" not in response.text


async def test_chatkit_js_is_under_a_policy_that_allows_only_openais_cdn(tmp_path: Path) -> None:
    response = await get(tmp_path, "/chatkit-js")
    assert response.status_code == 200
    csp = policy(response)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'", CHATKIT_ORIGIN]
    assert csp["frame-src"] == [CHATKIT_ORIGIN]
    assert csp["connect-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'", "'unsafe-inline'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin"


class References(HTMLParser):
    """Every resource a page names, as (CSP directive, URL), and any inline script or style."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {key: value or "" for key, value in attrs}
        if "style" in named or any(key.startswith("on") for key in named):
            self.inline.append(tag)
        if tag == "script":
            if "src" not in named:
                self.inline.append(tag)
            else:
                self.found.append(("script-src", named["src"]))
        elif tag == "style":
            self.inline.append(tag)
        elif tag == "link":
            directive = "style-src" if named.get("rel") == "stylesheet" else "img-src"
            self.found.append((directive, named["href"]))
        elif tag in ("img", "iframe"):
            self.found.append(("img-src" if tag == "img" else "frame-src", named["src"]))


def allowed(url: str, sources: list[str]) -> bool:
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc:
        return "'self'" in sources
    return f"{parts.scheme}://{parts.netloc}" in sources


@pytest.mark.parametrize("path", ["/", "/chatkit-js"])
async def test_a_page_names_only_what_its_policy_allows(tmp_path: Path, path: str) -> None:
    response = await get(tmp_path, path)
    csp = policy(response)
    page = References()
    page.feed(response.text)
    assert page.found, "the page names its scripts and styles"
    assert page.inline == []
    for directive, url in page.found:
        assert allowed(url, csp.get(directive, csp["default-src"])), f"{directive} blocks {url}"
    for directive, url in page.found:
        if directive == "script-src" and url.startswith("/web/"):
            source = STATIC.joinpath(url.removeprefix("/web/")).read_text()
            # The scripts call this server only, by path or on location.origin.
            assert not re.search(r"https?://", source), f"{url} names another origin"
