"""Settings: the only place that reads the environment (and an optional `.env`)."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .attachments.transcription_models import parse_transcription_model
from .db_pooler import DROPPED_URL_OPTIONS, names_a_pooler

DEFAULT_DATABASE_URL = "sqlite:///./data/chatkit.db"

# AGENT: a built-in agent, or `package.module:factory` (agent/custom.py).
BUILT_IN_AGENTS = ("todo", "chat")
_FACTORY = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class ConfigError(Exception):
    """A setting has an invalid value; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = DEFAULT_DATABASE_URL
    # Where migrations connect instead of DATABASE_URL (e.g. the database itself when
    # DATABASE_URL is a pooler's); unset: DATABASE_URL.
    database_direct_url: str | None = None
    # auto: transaction pooling is assumed for URLs that name a pooler (db_pooler.py).
    database_pooler: Literal["auto", "transaction", "none"] = "auto"
    # PostgreSQL connections per worker: pool_size kept open, max_overflow more at peak.
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    # Seconds a request waits for a pooled connection before it is answered 503.
    database_pool_timeout: float = Field(default=10.0, gt=0)

    model: str | None = None
    model_api_base: str | None = None
    model_api_key: str | None = None
    gemini_api_key: str | None = None
    # LiteLLM takes Google's own name for the Gemini key too; only for MODEL=gemini/...
    google_api_key: str | None = None
    gemini_model: str = "gemini-2.5-flash"
    openai_api_key: str | None = None
    anthropic_api_key: str | None = None
    # Agents SDK trace export goes to OpenAI: never on unless the operator asks.
    agents_tracing: bool = False
    # The models users may pick, `id[=label]` comma-separated; the first is the default.
    models: Annotated[list[tuple[str, str]], NoDecode] = Field(default_factory=list)

    # --- the assistant ---
    agent: str = "todo"
    # Replaces the instructions of the built-in agents; {date} and {user_id} filled per turn.
    system_prompt: str | None = None
    system_prompt_file: Path | None = None
    # MCP servers whose tools every agent gets (agent/mcp_config.py).
    mcp_config: Path | None = None

    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000", "http://localhost:5173"]
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    history_items: int = Field(default=30, ge=1, le=500)
    # Tokens of history a turn may send (estimated); unset: half the model's context
    # window where LiteLLM's model map knows it, else 16,000 (agent/context_window.py).
    history_tokens: int | None = Field(default=None, ge=100)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_message_chars: int = Field(default=4000, ge=1)
    heartbeat_seconds: float = Field(default=15.0, gt=0)

    # --- attachments ---
    # Where attachment bytes go: unset (the database), file:///absolute/directory, or
    # s3://bucket/prefix (credentials from AWS_*).
    attachments_url: str | None = None
    # The S3-compatible endpoint for s3:// (MinIO, R2, ...); unset: AWS.
    attachments_s3_endpoint: str | None = None
    attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    # Accepted MIME types, comma-separated; unset: common images, PDF, text, Markdown,
    # CSV, JSON and Office documents (attachments/rules.py).
    attachment_types: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_attachments_per_message: int = Field(default=10, ge=0)
    # Signs preview and upload URLs; unset: the auth secret, else one per process.
    attachment_url_secret: str | None = None
    # Characters of a text file the model reads; the rest is cut with a note.
    attachment_text_chars: int = Field(default=20_000, ge=100)
    # Bytes of images one model request carries, newest first; older ones are named.
    model_image_bytes_budget: int = Field(default=20 * 1024 * 1024, ge=0)
    # Voice input (input.transcribe): openai/whisper-1, groq/whisper-large-v3, ... (what
    # works: attachments/transcription_models.py); unset: off.
    transcription_model: str | None = None

    # --- runs and limits ---
    rate_limit_messages_per_minute: int = Field(default=30, ge=1)
    max_concurrent_runs_per_user: int = Field(default=3, ge=1)
    daily_token_budget: int | None = Field(default=None, ge=1)
    model_timeout_seconds: float = Field(default=60.0, gt=0)
    # How often a worker confirms its runs are alive; a run silent for six of these
    # (a crashed worker's) no longer holds its thread.
    run_heartbeat_seconds: float = Field(default=5.0, gt=0)

    # --- operations ---
    log_format: Literal["text", "json"] = "text"
    debug: bool = False
    otel_tracing: bool = False
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "chatkit-backend"
    chatkit_domain_key: str | None = None

    # --- auth ---
    # Bearer JWTs are verified with a shared HS256 secret (BETTER_AUTH_SECRET is the name
    # the Better Auth seeds use, AUTH_SECRET the neutral one) or with the public keys at
    # AUTH_JWKS_URL; the JWKS wins when both are set. With neither, the server runs as
    # the single local user, which the CLI allows only on a loopback address.
    better_auth_secret: str | None = None
    auth_secret: str | None = None
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None

    @field_validator(
        "better_auth_secret",
        "auth_secret",
        "auth_jwks_url",
        "auth_issuer",
        "auth_audience",
        mode="before",
    )
    @classmethod
    def _blank_auth_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("auth_jwks_url")
    @classmethod
    def _http_jwks_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in {"http", "https"}:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> Settings:
        both = self.better_auth_secret and self.auth_secret
        if both and self.better_auth_secret != self.auth_secret:
            # Guessing which one signs the tokens would turn a typo into a 401 mystery.
            raise ValueError("BETTER_AUTH_SECRET and AUTH_SECRET differ: set only one")
        return self

    @property
    def jwt_secret(self) -> str | None:
        """The shared HS256 secret, whichever of the two names set it."""
        return self.auth_secret or self.better_auth_secret

    @property
    def auth_configured(self) -> bool:
        """Whether callers must present a bearer token (otherwise: local mode)."""
        return bool(self.jwt_secret or self.auth_jwks_url)

    @field_validator("agent")
    @classmethod
    def _known_agent(cls, value: str) -> str:
        value = value.strip()
        if value not in BUILT_IN_AGENTS and not _FACTORY.match(value):
            raise ValueError("must be todo, chat, or package.module:factory")
        return value

    @field_validator("system_prompt", "system_prompt_file", mode="before")
    @classmethod
    def _blank_prompt_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("system_prompt_file")
    @classmethod
    def _readable_prompt_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                value.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read {value}: {exc}") from None
        return value

    @field_validator("mcp_config", mode="before")
    @classmethod
    def _blank_mcp_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("mcp_config")
    @classmethod
    def _usable_mcp_config(cls, value: Path | None) -> Path | None:
        if value is not None:
            from .agent.mcp_config import McpConfigError, load_mcp_config

            try:
                load_mcp_config(value)
            except McpConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one_prompt(self) -> Settings:
        if self.system_prompt_file is not None:
            if self.system_prompt is not None:
                raise ValueError("SYSTEM_PROMPT and SYSTEM_PROMPT_FILE are both set: set only one")
            # Read once, at start: the rest of the code knows only `system_prompt`.
            self.system_prompt = self.system_prompt_file.read_text(encoding="utf-8")
        return self

    @field_validator("models", mode="before")
    @classmethod
    def _parse_models(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        models: list[tuple[str, str]] = []
        for entry in value.split(","):
            if not entry.strip():
                continue
            model_id, _, label = entry.partition("=")
            model_id, label = model_id.strip(), label.strip()
            if not model_id or any(c.isspace() for c in model_id):
                raise ValueError(f"{entry.strip()!r} is not `id` or `id=label`")
            if model_id in (m for m, _ in models):
                raise ValueError(f"{model_id} is listed twice")
            models.append((model_id, label or model_id))
        return models

    @model_validator(mode="after")
    def _model_heads_models(self) -> Settings:
        if self.models and self.model and self.model != self.models[0][0]:
            # Two answers to "which model by default?" would make one of them a lie.
            raise ValueError(
                f"MODEL={self.model} but the first of MODELS (the default) is "
                f"{self.models[0][0]}: unset MODEL, or put it first in MODELS"
            )
        return self

    @field_validator(
        "model", "model_api_base", "model_api_key", "database_direct_url", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_pooler", mode="before")
    @classmethod
    def _lower_pooler(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("daily_token_budget", "history_tokens", mode="before")
    @classmethod
    def _blank_budget_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "attachments_url",
        "attachments_s3_endpoint",
        "attachment_url_secret",
        "transcription_model",
        mode="before",
    )
    @classmethod
    def _blank_attachment_setting_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("attachments_url")
    @classmethod
    def _known_attachment_storage(cls, value: str | None) -> str | None:
        if value is None or value == "database":
            return value
        parts = urlsplit(value)
        if parts.scheme == "s3" and parts.netloc and not parts.query:
            return value
        if parts.scheme != "file" or parts.netloc or not parts.path.startswith("/"):
            raise ValueError(
                "must be unset, `database`, file:///absolute/directory or s3://bucket/prefix"
            )
        return value

    @field_validator("transcription_model")
    @classmethod
    def _known_transcription_route(cls, value: str | None) -> str | None:
        if value is not None:
            parse_transcription_model(value)  # ValueError saying what works
        return value

    @field_validator("attachment_types", mode="before")
    @classmethod
    def _split_types(cls, value: object) -> object:
        if isinstance(value, str):
            types = [t.strip().lower() for t in value.split(",") if t.strip()]
            for kind in types:
                if not re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", kind):
                    raise ValueError(f"{kind!r} is not a MIME type like image/png")
            return types
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

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

    @field_validator("database_direct_url")
    @classmethod
    def _postgres_direct_url(cls, value: str | None) -> str | None:
        if value is not None and value.split(":", 1)[0].split("+", 1)[0] not in {
            "postgres",
            "postgresql",
        }:
            raise ValueError("must be a postgresql:// URL (SQLite has no pooler to bypass)")
        return value

    @cached_property
    def async_database_url(self) -> str:
        """DATABASE_URL with the async driver SQLAlchemy needs (see `async_url`)."""
        return async_url(self.database_url)

    @cached_property
    def async_direct_url(self) -> str | None:
        """DATABASE_DIRECT_URL with the async driver, or None when unset."""
        return async_url(self.database_direct_url) if self.database_direct_url else None

    @property
    def transaction_pooled(self) -> bool:
        """Whether DATABASE_URL reaches PostgreSQL through a transaction-pooling proxy."""
        if self.is_sqlite or self.database_pooler == "none":
            return False
        return self.database_pooler == "transaction" or names_a_pooler(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def async_url(url: str) -> str:
    """A database URL with the async driver SQLAlchemy needs.

    The seeds write plain `postgresql://...?sslmode=require` URLs (Neon, Supabase);
    asyncpg names that option `ssl`, so it is translated rather than rejected, and the
    options only libpq or Prisma know are dropped rather than passed on to fail.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        # urlunsplit would drop the empty host of sqlite:////abs/path.
        return "sqlite+aiosqlite" + url[url.index(":") :]
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "sslmode":
            key = "ssl"
        if key in DROPPED_URL_OPTIONS:
            continue
        query.append((key, value))
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg", query=urlencode(query)))


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
