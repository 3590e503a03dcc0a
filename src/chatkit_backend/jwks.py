"""A JSON Web Key Set fetched over HTTP, cached, and refreshed at most once per interval."""

from __future__ import annotations

import asyncio
import logging
from time import monotonic

import httpx
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKSetError

log = logging.getLogger(__name__)

# Public-key algorithms a JWKS may pin a token to; an "oct" (HMAC) key in the set is ignored.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)


class UnknownKey(Exception):
    """The set, as last fetched, has no key for the token's `kid`."""


class JwksUnavailable(Exception):
    """The set could not be fetched (or parsed); the token can be neither trusted nor refused."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("the JWKS could not be fetched")
        self.retry_after = retry_after


class JwksCache:
    """The keys at one URL.

    An unknown `kid` triggers a refetch (that is how key rotation is picked up), but at
    most one fetch runs per `min_interval` seconds: otherwise every forged `kid` would cost
    a request to the key server. Concurrent misses share one fetch.
    """

    def __init__(self, url: str, *, min_interval: float = 30.0, timeout: float = 5.0) -> None:
        self.url = url
        self.min_interval = min_interval
        self.timeout = timeout
        self._keys: dict[str | None, PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_failed = False
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> PyJWK:
        """The key for `kid` (a token without one matches a set of exactly one key).

        Raises UnknownKey, or JwksUnavailable when the latest fetch failed.
        """
        found = self._lookup(kid)
        if found is not None:
            return found
        async with self._lock:
            found = self._lookup(kid)  # a fetch that ran while we waited may have brought it
            if found is None and self._may_fetch():
                await self._refresh()
                found = self._lookup(kid)
        if found is not None:
            return found
        if self._last_failed:
            raise JwksUnavailable(self._wait_left())
        raise UnknownKey

    def _lookup(self, kid: str | None) -> PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid) if kid is not None else None

    def _may_fetch(self) -> bool:
        return self._fetched_at is None or self._wait_left() <= 0

    def _wait_left(self) -> float:
        if self._fetched_at is None:
            return 0.0
        return max(0.0, self._fetched_at + self.min_interval - monotonic())

    async def _refresh(self) -> None:
        self._fetched_at = monotonic()
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(self.url, headers={"accept": "application/json"})
            response.raise_for_status()
            keys = _signing_keys(response.json())
        except httpx.HTTPStatusError as exc:
            self._fail(f"HTTP {exc.response.status_code}")
        except httpx.HTTPError as exc:
            self._fail(type(exc).__name__)
        except (ValueError, TypeError, AttributeError, PyJWKSetError) as exc:
            self._fail(f"not a usable key set ({type(exc).__name__})")
        else:
            # Keys missing from the new set are dropped: a revoked key stops working here.
            self._keys = keys
            self._last_failed = False
            log.info("JWKS fetched from %s: %d key(s)", self.url, len(keys))

    def _fail(self, reason: str) -> None:
        # The old keys stay: a key server outage must not sign everybody out.
        self._last_failed = True
        log.warning(
            "JWKS fetch from %s failed: %s; next attempt in %.0f s at the earliest",
            self.url,
            reason,
            self.min_interval,
        )


def _signing_keys(document: object) -> dict[str | None, PyJWK]:
    """The public signing keys of a JWKS document, by `kid`."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise PyJWKSetError("no 'keys' list")
    # An encryption key must not verify signatures.
    candidates = [
        key for key in document["keys"] if isinstance(key, dict) and key.get("use", "sig") == "sig"
    ]
    keys = {
        jwk.key_id: jwk
        for jwk in PyJWKSet(candidates).keys
        if jwk.algorithm_name in ASYMMETRIC_ALGORITHMS
    }
    if not keys:
        raise PyJWKSetError("no public signing keys")
    return keys
