"""Short-lived signed URLs for attachment bytes.

A browser `<img>` cannot send a bearer header, and the ChatKit frontend uploads to the
`upload_descriptor` URL without one: such URLs carry an HMAC over (purpose, attachment
id, owner, expiry) instead. The owner is part of what is signed and checked against the
row, so a URL only ever opens the file it was made for, of the user it was made for.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

PREVIEW_SECONDS = 15 * 60
UPLOAD_SECONDS = 60 * 60


class UrlSigner:
    def __init__(self, secret: str | None) -> None:
        # Without a configured secret a per-process one still works for one instance;
        # several instances need ATTACHMENT_URL_SECRET (or the auth secret) shared.
        self.shared = bool(secret)
        # A key of its own, derived: the auth secret (when it is the one given) signs
        # tokens too, and a signature made for one use must never be valid for the other.
        root = (secret or secrets.token_hex(32)).encode()
        self._key = hmac.new(root, b"chatkit-backend attachment urls v1", hashlib.sha256).digest()

    def _signature(self, purpose: str, attachment_id: str, user_id: str, expires: int) -> str:
        message = f"{purpose}\n{attachment_id}\n{user_id}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(
        self, base_url: str, purpose: str, attachment_id: str, user_id: str, seconds: int
    ) -> str:
        expires = int(time.time()) + seconds
        signature = self._signature(purpose, attachment_id, user_id, expires)
        return (
            f"{base_url.rstrip('/')}/attachments/{attachment_id}/{purpose}"
            f"?expires={expires}&signature={signature}"
        )

    def valid(
        self, purpose: str, attachment_id: str, user_id: str, expires: int, signature: str
    ) -> bool:
        if expires < time.time():
            return False
        if not signature.isascii():
            return False  # compare_digest refuses non-ASCII str: a 404 like any bad one
        expected = self._signature(purpose, attachment_id, user_id, expires)
        return hmac.compare_digest(expected, signature)
