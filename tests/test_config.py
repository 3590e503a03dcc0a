"""Settings from the environment and `.env`: URL translation, validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatkit_backend.config import ConfigError, Settings, load_settings

SETTING_VARS = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting comes from the caller's environment or a stray `.env`."""
    for name in SETTING_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://u:p@h/db?sslmode=require",
            "postgresql+asyncpg://u:p@h/db?ssl=require",
        ),
        (
            "postgresql://u:p@h/db?sslmode=require&channel_binding=require",
            "postgresql+asyncpg://u:p@h/db?ssl=require",
        ),
        ("postgres://u:p@h:6543/db", "postgresql+asyncpg://u:p@h:6543/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///./data/x.db", "sqlite+aiosqlite:///./data/x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
    ],
)
def test_async_database_url(monkeypatch: pytest.MonkeyPatch, url: str, expected: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    settings = load_settings()
    assert settings.database_url == url
    assert settings.async_database_url == expected


def test_default_database_is_a_local_sqlite_file() -> None:
    settings = load_settings()
    assert settings.is_sqlite
    assert settings.async_database_url == "sqlite+aiosqlite:///./data/chatkit.db"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HISTORY_ITEMS", "abc"),
        ("HISTORY_ITEMS", "0"),
        ("DATABASE_URL", "mysql://x"),
        ("LOG_LEVEL", "loud"),
        ("HEARTBEAT_SECONDS", "-1"),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert str(exc.value).startswith(f"{name}: ")


def test_each_bad_variable_gets_its_own_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HISTORY_ITEMS", "abc")
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    parts = str(exc.value).split("; ")
    assert sorted(p.split(":", 1)[0] for p in parts) == ["HISTORY_ITEMS", "LOG_LEVEL"]


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"


def test_cors_origins_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", " https://a.example, https://b.example:8443 ,,")
    assert load_settings().cors_origins == ["https://a.example", "https://b.example:8443"]


def test_cors_origins_default() -> None:
    assert load_settings().cors_origins == ["http://localhost:3000", "http://localhost:5173"]


def test_dotenv_is_read_and_environment_overrides_it(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    (clean_env / ".env").write_text(
        "MODEL=from-dotenv\nHISTORY_ITEMS=12\nDATABASE_URL=postgres://u@h/db\n"
    )
    settings = load_settings()
    assert settings.model == "from-dotenv"
    assert settings.history_items == 12
    assert settings.async_database_url == "postgresql+asyncpg://u@h/db"

    monkeypatch.setenv("MODEL", "from-environment")
    settings = load_settings()
    assert settings.model == "from-environment"
    assert settings.history_items == 12


def test_invalid_value_in_dotenv_names_the_variable(clean_env: Path) -> None:
    (clean_env / ".env").write_text("HISTORY_ITEMS=many\n")
    with pytest.raises(ConfigError, match=r"^HISTORY_ITEMS: "):
        load_settings()


def test_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    settings = load_settings(database_url="sqlite:////tmp/o.db")
    assert settings.async_database_url == "sqlite+aiosqlite:////tmp/o.db"
