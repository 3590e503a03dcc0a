"""Bearer JWTs over real HTTP: shared secret, JWKS (caching, rotation, outages), claims, logs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import get_default_algorithms

from chatkit_backend import jwks
from chatkit_backend.auth import bearer_token, is_loopback_host
from chatkit_backend.config import Settings, load_settings

from .conftest import scripted_settings
from .databases import sqlite_url
from .live import ChatKitClient, live_server
from .scripted_provider import ScriptedProvider, Text

SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
ISSUER = "https://auth.example.test"
AUDIENCE = "chatkit-backend"

# The two front doors: the ChatKit protocol and the REST API.
ENDPOINTS = {
    "chatkit": ("POST", "/chatkit", {"type": "threads.list", "params": {}}),
    "tasks": ("GET", "/api/tasks", None),
}

# Every auth variable is given, so a developer's shell cannot change what a test means.
NO_AUTH: dict[str, Any] = {
    "better_auth_secret": None,
    "auth_secret": None,
    "auth_jwks_url": None,
    "auth_issuer": None,
    "auth_audience": None,
}


def auth_settings(directory: Path, **auth: Any) -> Settings:
    return load_settings(database_url=sqlite_url(directory), model="offline", **{**NO_AUTH, **auth})


def claims(sub: str | None = "alice", ttl: int = 300, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {"iat": now, "exp": now + ttl, **extra}
    if sub is not None:
        body["sub"] = sub
    return body


def hs256(body: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(body, secret, algorithm="HS256")


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned(body: dict[str, Any], **header: Any) -> str:
    """An `alg: none` token, built by hand as an attacker would."""
    return f"{b64({'alg': 'none', 'typ': 'JWT', **header})}.{b64(body)}."


def call(base_url: str, endpoint: str, token: str | None = None, **headers: str) -> httpx.Response:
    method, path, body = ENDPOINTS[endpoint]
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.request(method, base_url + path, json=body, headers=headers, timeout=30)


def assert_refused(
    response: httpx.Response, challenge: str = 'Bearer error="invalid_token"'
) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == challenge
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 401


# --- keys and a key server the tests control ------------------------------------------


@dataclass
class SigningKey:
    alg: str
    private: Any
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @classmethod
    def generate(cls, alg: str) -> SigningKey:
        if alg == "EdDSA":
            return cls(alg, Ed25519PrivateKey.generate())
        if alg == "RS256":
            return cls(alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        if alg == "ES256":
            return cls(alg, ec.generate_private_key(ec.SECP256R1()))
        raise ValueError(alg)

    def jwk(self) -> dict[str, Any]:
        exporter = get_default_algorithms()[self.alg]
        public: dict[str, Any] = exporter.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def token(self, body: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            body, self.private, algorithm=self.alg, headers={"kid": self.kid, **header}
        )

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


class KeyServer:
    """A JWKS endpoint on 127.0.0.1: its key set and health are the test's; it counts fetches."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.status = 200
        self.body: bytes | None = None  # served instead of the key set when set
        self.delay = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                time.sleep(owner.delay)
                body = owner.body or json.dumps({"keys": [k.jwk() for k in owner.keys]}).encode()
                self.send_response(owner.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/api/auth/jwks"

    def __enter__(self) -> KeyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.shutdown()
        self.http.server_close()


class FakeClock:
    """Stands in for the JWKS cache's monotonic clock, so the 30 s window costs no waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(jwks, "monotonic", fake)
    return fake


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log line of the process while the block runs (the app replaces root handlers
    when it is created, so pytest's caplog would see nothing: attach after start-up)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(level=logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lines
    finally:
        root.removeHandler(handler)


# --- shared secret -------------------------------------------------------------------


@pytest.fixture(scope="module")
def secret_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = auth_settings(tmp_path_factory.mktemp("secret"), better_auth_secret=SECRET)
    with live_server(settings) as url:
        yield url


@pytest.fixture(scope="module")
def claims_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server that also checks `iss` and `aud`."""
    settings = auth_settings(
        tmp_path_factory.mktemp("claims"),
        auth_secret=SECRET,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
    )
    with live_server(settings) as url:
        yield url


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_valid_hs256_token_is_accepted(secret_url: str, endpoint: str) -> None:
    assert call(secret_url, endpoint, hs256(claims())).status_code == 200
    # Better Auth tokens carry an `aud`; without AUTH_AUDIENCE it is not ours to judge.
    assert call(secret_url, endpoint, hs256(claims(aud="someone"))).status_code == 200
    # Clocks drift: a token that expired a moment ago is still within the leeway.
    assert call(secret_url, endpoint, hs256(claims(ttl=-10))).status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_request_without_a_bearer_token_is_401_with_a_plain_challenge(
    secret_url: str, endpoint: str
) -> None:
    assert_refused(call(secret_url, endpoint), challenge="Bearer")
    assert_refused(call(secret_url, endpoint, authorization="Basic YWxpY2U6cHc="), "Bearer")
    assert_refused(call(secret_url, endpoint, authorization="Bearer"), "Bearer")
    assert call(secret_url, endpoint).json()["code"] == "missing_token"


RSA_KEY = SigningKey.generate("RS256")

# Each bad token, and the reason the 401 must name (proof it failed for that reason).
BAD_TOKENS: dict[str, tuple[Callable[[], str], str]] = {
    "garbage": (lambda: "not-a-jwt", "malformed"),
    "three garbage parts": (lambda: "abc.def.ghi", "malformed"),
    "wrong secret": (
        lambda: hs256(claims(), secret="another-secret-of-quite-some-length-0123"),
        "bad signature",
    ),
    "tampered payload": (lambda: _tampered(hs256(claims())), "bad signature"),
    "expired": (lambda: hs256(claims(ttl=-120)), "expired"),
    "not valid yet": (lambda: hs256(claims(nbf=int(time.time()) + 600)), "not valid yet"),
    "issued in the future": (
        lambda: hs256(claims(iat=int(time.time()) + 600, ttl=900)),
        "not valid yet",
    ),
    "alg none": (lambda: unsigned(claims()), "algorithm not accepted"),
    "alg none with a signature": (lambda: unsigned(claims()) + "c2ln", "algorithm not accepted"),
    "RS256 against a secret": (
        lambda: RSA_KEY.token(claims()),
        "algorithm not accepted: it is signed with RS256, a public-key algorithm (as Better "
        "Auth's JWT plugin signs), and this server has only a shared secret, which verifies "
        "HS256; set AUTH_JWKS_URL to the issuer's JWKS "
        "(Better Auth: https://<your app>/api/auth/jwks)",
    ),
    "HS384": (lambda: jwt.encode(claims(), SECRET, algorithm="HS384"), "algorithm not accepted"),
    "no exp": (lambda: hs256({"sub": "alice", "iat": int(time.time())}), "no 'exp' claim"),
    "no sub and no id": (lambda: hs256(claims(sub=None)), "no 'sub' or 'id' claim"),
    "empty sub": (lambda: hs256(claims(sub="")), "no 'sub' or 'id' claim"),
    "user id too long": (lambda: hs256(claims(sub="x" * 256)), "'sub' claim is too long"),
}


def _tampered(token: str) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{b64(claims(sub='mallory'))}.{signature}"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", BAD_TOKENS)
def test_a_bad_token_is_401_invalid_token(secret_url: str, endpoint: str, case: str) -> None:
    make, reason = BAD_TOKENS[case]
    response = call(secret_url, endpoint, make())
    assert_refused(response)
    assert response.json()["code"] == "invalid_token"
    assert response.json()["detail"] == f"Invalid bearer token: {reason}."


def test_the_401_reason_is_named_and_cors_can_read_it(secret_url: str) -> None:
    response = call(secret_url, "tasks", hs256(claims(ttl=-120)), origin="http://localhost:3000")
    assert_refused(response)
    assert response.json()["detail"] == "Invalid bearer token: expired."
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    # A browser's preflight carries no token and must not be refused.
    preflight = httpx.options(
        secret_url + "/chatkit",
        headers={
            "origin": "http://localhost:3000",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_health_needs_no_token(secret_url: str, path: str) -> None:
    assert httpx.get(secret_url + path).status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_issuer_and_audience_are_checked_when_configured(claims_url: str, endpoint: str) -> None:
    good: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE}
    assert call(claims_url, endpoint, hs256(claims(**good))).status_code == 200
    listed: dict[str, Any] = {"iss": ISSUER, "aud": ["other", AUDIENCE]}
    assert call(claims_url, endpoint, hs256(claims(**listed))).status_code == 200
    bad_claims: list[dict[str, Any]] = [
        {"iss": "https://evil.example", "aud": AUDIENCE},
        {"iss": ISSUER, "aud": "other"},
        {"aud": AUDIENCE},
        {"iss": ISSUER},
    ]
    for bad in bad_claims:
        assert_refused(call(claims_url, endpoint, hs256(claims(**bad))))


async def test_each_user_sees_only_their_own_threads_and_tasks(
    database_url: str, provider: ScriptedProvider
) -> None:
    settings = scripted_settings(database_url, provider, **{**NO_AUTH, "auth_secret": SECRET})
    with live_server(settings) as url:
        alice = ChatKitClient(url, {"authorization": f"Bearer {hs256(claims('alice'))}"})
        bob = ChatKitClient(url, {"authorization": f"Bearer {hs256(claims('bob'))}"})
        # Some issuers put the user id in `id` instead of `sub`: that is the same user.
        alice_by_id = ChatKitClient(
            url, {"authorization": f"Bearer {hs256(claims(None, id='alice'))}"}
        )
        try:
            provider.enqueue(Text("Hello, Alice."))
            thread_id, _ = await alice.create_thread("hi")
            created = await alice.http.post("/api/tasks", json={"title": "Alice's task"})
            assert created.status_code == 201, created.text

            threads = await alice_by_id.call("threads.list", limit=10)
            assert [t["id"] for t in threads["data"]] == [thread_id]
            tasks = (await alice_by_id.http.get("/api/tasks")).json()
            assert [t["title"] for t in tasks["items"]] == ["Alice's task"]

            assert (await bob.call("threads.list", limit=10))["data"] == []
            assert (await bob.http.get("/api/tasks")).json()["items"] == []
            stolen = await bob.post(
                {"type": "threads.get_by_id", "params": {"thread_id": thread_id}}
            )
            assert stolen.status_code == 404
        finally:
            for client in (alice, bob, alice_by_id):
                await client.aclose()


def test_local_mode_runs_as_the_local_user_and_ignores_tokens(tmp_path: Path) -> None:
    with live_server(auth_settings(tmp_path)) as url:
        created = httpx.post(url + "/api/tasks", json={"title": "mine"})
        assert created.status_code == 201
        for token in (None, "garbage", hs256(claims("alice"))):
            response = call(url, "tasks", token)
            assert response.status_code == 200
            assert [t["title"] for t in response.json()["items"]] == ["mine"]


# --- JWKS ----------------------------------------------------------------------------


@contextmanager
def jwks_app(directory: Path, keys: KeyServer, **auth: Any) -> Iterator[str]:
    with live_server(auth_settings(directory, auth_jwks_url=keys.url, **auth)) as url:
        yield url


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_eddsa_rs256_and_es256_tokens_are_accepted_via_jwks(tmp_path: Path, endpoint: str) -> None:
    signers = [SigningKey.generate(alg) for alg in ("EdDSA", "RS256", "ES256")]
    with KeyServer(*signers) as keys, jwks_app(tmp_path, keys) as url:
        for signer in signers:
            assert call(url, endpoint, signer.token(claims())).status_code == 200, signer.alg
        # One fetch served every key: the set is cached.
        assert keys.fetches == 1


def test_a_jwks_token_is_still_checked_for_expiry_signature_and_algorithm(
    tmp_path: Path,
) -> None:
    signer, stranger = SigningKey.generate("EdDSA"), SigningKey.generate("EdDSA")
    stranger.kid = signer.kid  # same kid, wrong key
    with KeyServer(signer) as keys, jwks_app(tmp_path, keys) as url:
        assert_refused(call(url, "tasks", signer.token(claims(ttl=-120))))
        assert_refused(call(url, "tasks", stranger.token(claims())))
        assert_refused(call(url, "tasks", unsigned(claims(), kid=signer.kid)))
        assert call(url, "tasks", signer.token(claims())).status_code == 200


def test_hs256_is_refused_when_a_jwks_is_configured(tmp_path: Path) -> None:
    rsa_key = SigningKey.generate("RS256")
    # The secret is set too (a shared .env): the JWKS wins and HS256 stays refused.
    with (
        KeyServer(rsa_key) as keys,
        jwks_app(tmp_path, keys, better_auth_secret=SECRET) as url,
    ):
        for endpoint in ENDPOINTS:
            assert_refused(call(url, endpoint, hs256(claims())))
            # The classic confusion: HMAC keyed with the public key the server trusts.
            assert_refused(call(url, endpoint, _hmac_with_public_key(rsa_key)))
        # Refused on the algorithm alone: no fetch was spent on them.
        assert keys.fetches == 0
        assert call(url, "tasks", rsa_key.token(claims())).status_code == 200


def _hmac_with_public_key(key: SigningKey) -> str:
    """HS256 keyed with the server's trusted public key (PyJWT itself refuses to make one)."""
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{b64(claims())}"
    mac = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def test_an_unknown_kid_refetches_at_most_once_per_window_and_rotation_is_picked_up(
    tmp_path: Path, clock: FakeClock
) -> None:
    old, new = SigningKey.generate("EdDSA"), SigningKey.generate("EdDSA")
    with KeyServer(old) as keys, jwks_app(tmp_path, keys) as url:
        assert call(url, "tasks", old.token(claims())).status_code == 200
        assert keys.fetches == 1

        keys.keys = [new]  # rotation: the old key is retired
        clock.now += 5
        # Within 30 s of the last fetch an unknown kid is refused without asking again.
        for _ in range(3):
            assert_refused(call(url, "chatkit", new.token(claims())))
        forged = SigningKey.generate("EdDSA")
        assert_refused(call(url, "tasks", forged.token(claims())))
        assert keys.fetches == 1
        # The cached old key still works until the next fetch.
        assert call(url, "tasks", old.token(claims())).status_code == 200

        clock.now += 30
        assert call(url, "chatkit", new.token(claims())).status_code == 200
        assert keys.fetches == 2
        # The refetched set no longer has the old key: it is refused, still without a fetch.
        assert_refused(call(url, "tasks", old.token(claims())))
        assert call(url, "tasks", new.token(claims())).status_code == 200
        assert keys.fetches == 2


async def test_concurrent_requests_with_an_uncached_kid_share_one_fetch(
    tmp_path: Path,
) -> None:
    signer = SigningKey.generate("ES256")
    with KeyServer(signer) as keys, jwks_app(tmp_path, keys) as url:
        keys.delay = 0.3  # every request arrives while the first fetch is under way
        token = signer.token(claims())
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            answers = await asyncio.gather(
                *(
                    http.get("/api/tasks", headers={"authorization": f"Bearer {token}"})
                    for _ in range(20)
                )
            )
        assert [a.status_code for a in answers] == [200] * 20
        assert keys.fetches == 1


def test_a_jwks_outage_is_503_not_500_and_recovers(tmp_path: Path, clock: FakeClock) -> None:
    signer = SigningKey.generate("EdDSA")
    with KeyServer(signer) as keys, jwks_app(tmp_path, keys) as url:
        keys.status = 500
        token = signer.token(claims())
        with captured_logs() as logs:
            for endpoint in ENDPOINTS:
                response = call(url, endpoint, token)
                assert response.status_code == 503, response.text
                assert response.headers["content-type"].startswith("application/problem+json")
                assert int(response.headers["retry-after"]) >= 1
        assert keys.fetches == 1  # the outage is not hammered either
        assert any("JWKS fetch" in line and "HTTP 500" in line for line in logs)
        assert not any(token in line for line in logs)

        keys.status, keys.body = 200, b"<html>not json</html>"
        clock.now += 31
        assert call(url, "tasks", token).status_code == 503
        assert keys.fetches == 2

        keys.body = None
        clock.now += 31
        assert call(url, "tasks", token).status_code == 200
        assert keys.fetches == 3


def test_an_unreachable_jwks_is_503(tmp_path: Path) -> None:
    signer = SigningKey.generate("EdDSA")
    with KeyServer(signer) as keys:
        pass  # closed: nothing listens on its port any more
    with jwks_app(tmp_path, keys) as url:
        response = call(url, "chatkit", signer.token(claims()))
        assert response.status_code == 503, response.text


def test_a_key_outage_keeps_the_keys_already_fetched(tmp_path: Path, clock: FakeClock) -> None:
    signer, other = SigningKey.generate("RS256"), SigningKey.generate("RS256")
    with KeyServer(signer) as keys, jwks_app(tmp_path, keys) as url:
        assert call(url, "tasks", signer.token(claims())).status_code == 200
        keys.status = 503
        clock.now += 31
        assert call(url, "tasks", other.token(claims())).status_code == 503  # unknown, can't ask
        assert call(url, "tasks", signer.token(claims())).status_code == 200


# --- logs ----------------------------------------------------------------------------


def test_tokens_never_appear_in_the_logs(tmp_path: Path) -> None:
    # DEBUG: whatever any library logs about a request is searched too.
    settings = auth_settings(tmp_path, auth_secret=SECRET, log_level="DEBUG")
    root_level = logging.getLogger().level
    try:
        with live_server(settings) as url, captured_logs() as logs:
            tokens = [make() for make, _ in BAD_TOKENS.values()] + [hs256(claims())]
            for token in tokens:
                for endpoint in ENDPOINTS:
                    call(url, endpoint, token)
    finally:
        logging.getLogger().setLevel(root_level)  # the app set it process-wide
    assert any("bearer token refused: expired" in line for line in logs)
    assert any("bearer token refused: bad signature" in line for line in logs)
    for token in tokens:
        # Any one part of a real token (its payload or signature) would be a leak too.
        parts = [p for p in token.split(".") if len(p) > 8] or [token]
        for line in logs:
            assert not any(part in line for part in parts), line
    assert SECRET not in "\n".join(logs)


# --- small pieces --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic abc", None),
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("  Bearer  abc  ", "abc"),
    ],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
