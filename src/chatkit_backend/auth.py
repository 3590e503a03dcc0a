"""Authentication: turns a request's bearer JWT into a RequestContext.

Tokens are verified with a shared HS256 secret or with the public keys of a JWKS URL
(Better Auth's `/api/auth/jwks`). With neither configured the server runs as one local
user, which is only allowed on a loopback address (the CLI enforces that).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import replace
from typing import Any

import jwt
from fastapi import FastAPI, Request

from .config import Settings
from .context import RequestContext
from .errors import ServiceUnavailable, Unauthorized
from .jwks import ASYMMETRIC_ALGORITHMS, JwksCache, JwksUnavailable, UnknownKey
from .logs import bind
from .text_rules import name_problem

log = logging.getLogger(__name__)

LOCAL_USER_ID = "local"
# Clocks of the token issuer and this server may disagree by this much.
LEEWAY_SECONDS = 30
# The user id is stored in String(255) columns.
MAX_USER_ID_LENGTH = 255
# RFC 7518 §3.2: an HS256 key should be at least as long as the hash output.
MIN_SECRET_BYTES = 32
AUTH_VARIABLES = "BETTER_AUTH_SECRET, AUTH_SECRET or AUTH_JWKS_URL"
# Bearer values that stand for "no token" in JavaScript clients.
NO_TOKEN = frozenset({"null", "undefined"})


class InvalidToken(Exception):
    """A bearer token that must be refused; the message is a reason safe to log and show."""


def is_loopback_host(host: str) -> bool:
    """Whether binding to `host` keeps the server reachable from this machine only."""
    host = host.strip().removeprefix("[").removesuffix("]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve to a public address


class Authenticator:
    """Verifies bearer tokens for one deployment: its key, issuer, audience, JWKS cache."""

    def __init__(self, settings: Settings) -> None:
        self.jwks = JwksCache(settings.auth_jwks_url) if settings.auth_jwks_url else None
        # With a JWKS the keys are public ones: an HS256 token is refused even if a secret is set.
        self.secret = None if self.jwks else settings.jwt_secret
        self.issuer = settings.auth_issuer
        self.audience = settings.auth_audience
        if self.jwks:
            if settings.jwt_secret:
                log.info("auth: AUTH_JWKS_URL is set, so the shared secret is not used")
            log.info("auth: bearer tokens are verified with the keys at %s", self.jwks.url)
        elif self.secret:
            if len(self.secret.encode()) < MIN_SECRET_BYTES:
                log.warning(
                    "auth: the shared secret is shorter than %d bytes; HS256 tokens signed "
                    "with it can be brute-forced. Use a long random value.",
                    MIN_SECRET_BYTES,
                )
            log.info("auth: bearer tokens are verified with the shared HS256 secret")
        else:
            log.info("auth: none configured; every request runs as user %r", LOCAL_USER_ID)

    @property
    def is_local(self) -> bool:
        return self.jwks is None and self.secret is None

    async def context(self, request: Request) -> RequestContext:
        """The caller's context; raises Unauthorized (or 503 when keys cannot be fetched)."""
        request_id: str | None = getattr(request.state, "request_id", None)
        token: str | None = None
        if self.is_local:
            user_id = LOCAL_USER_ID
        else:
            token = bearer_token(request.headers.get("authorization"))
            if token is None:
                raise Unauthorized(
                    "A bearer token is required.",
                    code="missing_token",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if token in NO_TOKEN:
                # What a JavaScript client sends when it has no token (`Bearer ${null}`).
                raise Unauthorized(
                    f"A bearer token is required; the client sent the word {token!r} "
                    "instead of one (is the user signed in?).",
                    code="missing_token",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            try:
                user_id = await self.user_id(token)
            except InvalidToken as exc:
                # The reason only: the token is a credential and never goes to a log.
                log.info("bearer token refused: %s (request_id=%s)", exc, request_id)
                raise Unauthorized(
                    f"Invalid bearer token: {exc}.",
                    code="invalid_token",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                ) from None
            except JwksUnavailable as exc:
                raise ServiceUnavailable(
                    "Bearer tokens cannot be verified right now; try again shortly.",
                    code="auth_unavailable",
                    headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
                ) from None
        if request_id:
            return RequestContext(user_id=user_id, request_id=request_id, bearer_token=token)
        return RequestContext(user_id=user_id, bearer_token=token)

    async def user_id(self, token: str) -> str:
        """The user a valid token speaks for; raises InvalidToken or JwksUnavailable."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("malformed") from None
        alg, kid = header.get("alg"), header.get("kid")
        key: Any
        if self.jwks is not None:
            # Checked before the key lookup so that an HS256 or "none" token costs no fetch.
            if alg not in ASYMMETRIC_ALGORITHMS:
                raise InvalidToken("algorithm not accepted")
            if kid is not None and not isinstance(kid, str):
                raise InvalidToken("malformed")
            try:
                jwk = await self.jwks.key(kid)
            except UnknownKey:
                raise InvalidToken("unknown signing key") from None
            key, algorithm = jwk.key, jwk.algorithm_name
        else:
            if alg != "HS256":
                raise InvalidToken(_not_hs256(alg))
            key, algorithm = self.secret, "HS256"
        claims = self._verify(token, key, algorithm)
        return _user_id(claims)

    def _verify(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],  # pinned to the key, never taken from the token
                issuer=self.issuer,
                audience=self.audience,
                leeway=LEEWAY_SECONDS,
                # Without AUTH_AUDIENCE a token's `aud` is not ours to judge.
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("not valid yet") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("wrong issuer") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("wrong audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"no {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad signature") from None
        except jwt.InvalidAlgorithmError:
            raise InvalidToken("algorithm not accepted") from None
        except jwt.DecodeError:
            raise InvalidToken("malformed") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("invalid claims") from None
        return claims


def _not_hs256(alg: object) -> str:
    """Why a token that is not HS256 is refused when only a shared secret is configured."""
    if alg in ASYMMETRIC_ALGORITHMS:
        # Better Auth's JWT plugin (authClient.token()) signs with EdDSA: a common mix-up.
        return (
            f"algorithm not accepted: it is signed with {alg}, a public-key algorithm (as "
            "Better Auth's JWT plugin signs), and this server has only a shared secret, "
            "which verifies HS256; set AUTH_JWKS_URL to the issuer's JWKS "
            "(Better Auth: https://<your app>/api/auth/jwks)"
        )
    return "algorithm not accepted"


def _user_id(claims: dict[str, Any]) -> str:
    # Better Auth puts the user id in `sub`; some issuers only send an `id` claim.
    for name in ("sub", "id"):
        value = claims.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value.strip():
            if len(value) > MAX_USER_ID_LENGTH:
                raise InvalidToken(f"{name!r} claim is too long")
            # The user id is a name (text_rules.py): stored, and written into log lines.
            if problem := name_problem(value):
                raise InvalidToken(f"{name!r} claim {problem}")
            return value
    raise InvalidToken("no 'sub' or 'id' claim")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def authenticator(app: FastAPI) -> Authenticator:
    """The app's Authenticator, built from its settings on first use and kept on app.state."""
    found: Authenticator | None = getattr(app.state, "authenticator", None)
    if found is None:
        found = app.state.authenticator = Authenticator(app.state.settings)
    return found


async def current_context(request: Request) -> RequestContext:
    """The RequestContext of the caller (FastAPI dependency)."""
    ctx = await authenticator(request.app).context(request)
    bind(user_id=ctx.user_id)
    return replace(ctx, base_url=str(request.base_url))


def issue_token(settings: Settings, user_id: str, ttl_seconds: int) -> str:
    """An HS256 token for `user_id`, signed with the shared secret (`chatkit-backend token`)."""
    if not settings.jwt_secret:
        raise ValueError("no shared secret is configured")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
    if settings.auth_issuer:
        claims["iss"] = settings.auth_issuer
    if settings.auth_audience:
        claims["aud"] = settings.auth_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
