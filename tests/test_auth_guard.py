"""The CLI side of auth, run as a user would: the local-mode guard and `chatkit-backend token`."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest

from .processes import clean_env, run_cli, served

SECRET = "guard-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
AUTH_NAMES = ("BETTER_AUTH_SECRET", "AUTH_SECRET", "AUTH_JWKS_URL")


def env(**overrides: str) -> dict[str, str]:
    # Blank means unset: the caller's shell cannot add an issuer or audience to a test.
    return clean_env(AUTH_ISSUER="", AUTH_AUDIENCE="", **overrides)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])
def test_serving_beyond_loopback_without_auth_refuses_to_start(tmp_path: Path, host: str) -> None:
    result = run_cli("serve", "--host", host, "--port", "1", env=env(), cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert all(name in lines[0] for name in AUTH_NAMES)
    assert not (tmp_path / "data").exists(), "it must stop before touching the database"


def test_serving_on_localhost_without_auth_is_local_mode(tmp_path: Path) -> None:
    with served(env(), tmp_path, "--host", "localhost") as url:
        assert httpx.get(f"{url}/api/tasks").status_code == 200


def test_a_token_from_the_token_command_is_accepted_by_a_public_server(tmp_path: Path) -> None:
    # The seeds' name signs the token; the neutral name configures the server: same secret.
    printed = run_cli("token", "--user", "alice", env=env(BETTER_AUTH_SECRET=SECRET), cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    token = printed.stdout.strip()
    with served(env(AUTH_SECRET=SECRET), tmp_path, "--host", "0.0.0.0") as url:
        ok = httpx.get(f"{url}/api/tasks", headers={"authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        refused = httpx.get(f"{url}/api/tasks")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        forged = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, "x" * 40)
        refused = httpx.get(f"{url}/api/tasks", headers={"authorization": f"Bearer {forged}"})
        assert refused.status_code == 401


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [(None, 3600), ("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("7d", 604800)],
)
def test_the_token_command_signs_sub_iat_exp(tmp_path: Path, ttl: str | None, seconds: int) -> None:
    args = ["token", "--user", "user-42"] + (["--ttl", ttl] if ttl else [])
    result = run_cli(*args, env=env(AUTH_SECRET=SECRET), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "user-42"
    assert claims["exp"] - claims["iat"] == seconds
    assert abs(claims["iat"] - time.time()) < 60
    assert "iss" not in claims and "aud" not in claims


def test_the_token_command_adds_issuer_and_audience_when_configured(tmp_path: Path) -> None:
    configured = clean_env(AUTH_SECRET=SECRET, AUTH_ISSUER="https://auth.test", AUTH_AUDIENCE="ck")
    result = run_cli("token", "--user", "u", env=configured, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(
        result.stdout.strip(),
        SECRET,
        algorithms=["HS256"],
        issuer="https://auth.test",
        audience="ck",
    )
    assert claims["sub"] == "u"


def test_the_token_command_without_a_secret_fails_with_one_line(tmp_path: Path) -> None:
    result = run_cli("token", "--user", "alice", env=env(), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "BETTER_AUTH_SECRET" in lines[0] and "AUTH_SECRET" in lines[0]


def test_the_token_command_refuses_when_the_server_trusts_a_jwks(tmp_path: Path) -> None:
    configured = env(AUTH_SECRET=SECRET, AUTH_JWKS_URL="https://auth.test/api/auth/jwks")
    result = run_cli("token", "--user", "alice", env=configured, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "AUTH_JWKS_URL" in result.stderr


@pytest.mark.parametrize("ttl", ["0", "1w", "-5m", "soon", "1.5h"])
def test_the_token_command_rejects_a_bad_ttl(tmp_path: Path, ttl: str) -> None:
    result = run_cli(
        "token", "--user", "a", "--ttl", ttl, env=env(AUTH_SECRET=SECRET), cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "--ttl" in result.stderr


def test_two_different_secrets_are_a_configuration_error(tmp_path: Path) -> None:
    both = env(AUTH_SECRET=SECRET, BETTER_AUTH_SECRET=SECRET + "-other")
    for args in (("token", "--user", "a"), ("serve",)):
        result = run_cli(*args, env=both, cwd=tmp_path, timeout=30)
        assert result.returncode == 2
        assert "BETTER_AUTH_SECRET" in result.stderr and "AUTH_SECRET" in result.stderr
