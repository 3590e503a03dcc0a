"""Attachment edges a review found: signatures, files on disk, hostile PDFs, the start-up
warning about per-process signing keys."""

from __future__ import annotations

import hashlib
import hmac
import logging
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from chatkit_backend.attachments import extraction
from chatkit_backend.attachments.blobs import DirectoryBlobs
from chatkit_backend.attachments.signing import UrlSigner


def test_a_signature_is_checked_with_a_key_of_its_own() -> None:
    signer = UrlSigner("the-auth-secret")
    url = signer.url("http://x", "content", "atc_1", "alice", 60)
    signature = url.rsplit("signature=", 1)[1]
    expires = int(url.split("expires=")[1].split("&")[0])
    assert signer.valid("content", "atc_1", "alice", expires, signature)
    # Another user, purpose or id: refused.
    assert not signer.valid("content", "atc_1", "bob", expires, signature)
    assert not signer.valid("upload", "atc_1", "alice", expires, signature)
    # The auth secret itself does not sign these URLs: an HMAC made with it is refused.
    message = f"content\natc_1\nalice\n{expires}".encode()
    raw = hmac.new(b"the-auth-secret", message, hashlib.sha256).hexdigest()
    assert not signer.valid("content", "atc_1", "alice", expires, raw)
    # Non-ASCII (which compare_digest refuses with a TypeError) and expired: refused.
    assert not signer.valid("content", "atc_1", "alice", expires, "é" * 64)
    assert not signer.valid("content", "atc_1", "alice", int(time.time()) - 1, signature)
    assert signer.shared and not UrlSigner(None).shared


async def test_files_in_a_directory_are_the_servers_own(tmp_path: Path) -> None:
    blobs = DirectoryBlobs(tmp_path / "files")
    await blobs.put("atc_0123abcd", b"secret bytes")
    (stored,) = (tmp_path / "files").iterdir()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert await blobs.get("atc_0123abcd") == b"secret bytes"


@pytest.mark.parametrize("error", [AssertionError, RecursionError, IndexError, MemoryError])
def test_a_pdf_the_extractor_chokes_on_is_named_not_fatal(
    monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    import pypdf

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise error("hostile file")

    monkeypatch.setattr(pypdf, "PdfReader", broken)
    assert extraction.pdf_text(b"%PDF-1.7 ...", 1000) is None


async def test_unshared_signing_keys_are_warned_about_on_postgresql(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from chatkit_backend.attachments.setup import open_attachments
    from chatkit_backend.chat.store import SQLStore
    from chatkit_backend.config import load_settings
    from chatkit_backend.db import create_engine

    # The warning depends on DATABASE_URL only; the engine is never connected here.
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    try:
        alone = load_settings(database_url="postgresql://127.0.0.1/test")
        with caplog.at_level(logging.WARNING, "chatkit_backend.attachments.setup"):
            open_attachments(alone, engine, SQLStore(engine))
        assert "work only on the process that made them" in caplog.text
        caplog.clear()
        shared = load_settings(
            database_url="postgresql://127.0.0.1/test", attachment_url_secret="s"
        )
        with caplog.at_level(logging.WARNING, "chatkit_backend.attachments.setup"):
            open_attachments(shared, engine, SQLStore(engine))
        assert caplog.text == ""
    finally:
        await engine.dispose()
