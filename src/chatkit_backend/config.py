"""Settings: the only place that reads the environment (and an optional `.env`)."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./data/chatkit.db"


class ConfigError(Exception):
    """A setting has an invalid value; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = DEFAULT_DATABASE_URL

    model: str | None = None
    model_api_base: str | None = None
    model_api_key: str | None = None
    gemini_api_key: str | None = None
    gemini_model: str = "gemini-2.5-flash"
    openai_api_key: str | None = None
    anthropic_api_key: str | None = None
    # Agents SDK trace export goes to OpenAI: never on unless the operator asks.
    agents_tracing: bool = False

    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000", "http://localhost:5173"]
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    history_items: int = Field(default=30, ge=1, le=500)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_message_chars: int = Field(default=4000, ge=1)
    heartbeat_seconds: float = Field(default=15.0, gt=0)

    @field_validator("model", "model_api_base", "model_api_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgres", "postgresql"}:
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @cached_property
    def async_database_url(self) -> str:
        """DATABASE_URL with the async driver SQLAlchemy needs.

        The seeds write plain `postgresql://...?sslmode=require` URLs (Neon, Supabase);
        asyncpg names that option `ssl`, so it is translated rather than rejected.
        """
        parts = urlsplit(self.database_url)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme == "sqlite":
            # urlunsplit would drop the empty host of sqlite:////abs/path.
            return "sqlite+aiosqlite" + self.database_url[self.database_url.index(":") :]
        query = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "sslmode":
                key = "ssl"
            if key == "channel_binding":
                continue  # libpq-only option that asyncpg rejects
            query.append((key, value))
        return urlunsplit(parts._replace(scheme="postgresql+asyncpg", query=urlencode(query)))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning a validation failure into one line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "settings"
            lines.append(f"{name}: {err['msg']}")
        raise ConfigError("; ".join(lines)) from None
