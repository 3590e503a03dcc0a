"""MCP_CONFIG: the MCP servers whose tools every agent gets, in Claude Desktop's format.

`{"mcpServers": {"name": {"command", "args", "env"} | {"url", "headers"}}}`, plus our own
per-server keys: `allowed_tools`, `blocked_tools`, `timeout_seconds` and, for HTTP servers,
`forward_user_token`. `${VAR}`
anywhere in a string is read from the environment when the file is loaded, so secrets
stay out of the file (and out of logs: only server names and states are logged).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# A tool call that takes longer fails (the model is told), the turn goes on.
DEFAULT_TIMEOUT_SECONDS = 30.0


class McpConfigError(ValueError):
    """The MCP config file cannot be used; the message says where and why."""


class _Server(BaseModel):
    # Other clients' keys ("autoApprove", ...) are theirs: ignored, not errors.
    model_config = ConfigDict(extra="ignore")

    # Claude Desktop's, Cursor's and Cline's switch: a server turned off there is off here.
    disabled: bool = False
    allowed_tools: list[str] | None = None
    blocked_tools: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(default=DEFAULT_TIMEOUT_SECONDS, gt=0)

    def offers(self, tool: str) -> bool:
        if self.allowed_tools is not None and tool not in self.allowed_tools:
            return False
        return tool not in self.blocked_tools


class StdioServer(_Server):
    """A server the app starts as a child process and talks to over stdin/stdout."""

    transport: Literal["stdio"] = "stdio"
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


class HttpServer(_Server):
    """A server reached over streamable HTTP."""

    transport: Literal["http"] = "http"
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    # Send the caller's own bearer token with each call, so the server acts as that user.
    forward_user_token: bool = False


def _kind(value: Any) -> str:
    return "http" if isinstance(value, dict) and "url" in value else "stdio"


McpServerSpec = Annotated[StdioServer | HttpServer, Field(discriminator="transport")]


class McpConfig(BaseModel):
    mcpServers: dict[str, McpServerSpec] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _tag_transports(cls, data: Any) -> Any:
        # The format tells the transports apart by their keys, not by a tag.
        if isinstance(data, dict) and isinstance(data.get("mcpServers"), dict):
            servers = {
                name: {**spec, "transport": _kind(spec)} if isinstance(spec, dict) else spec
                for name, spec in data["mcpServers"].items()
            }
            data = {**data, "mcpServers": servers}
        return data


def _expand(value: Any, environ: dict[str, str]) -> Any:
    if isinstance(value, str):

        def variable(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise McpConfigError(f"${{{name}}} is used but {name} is not set")
            return environ[name]

        return _VARIABLE.sub(variable, value)
    if isinstance(value, list):
        return [_expand(v, environ) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, environ) for k, v in value.items()}
    return value


def load_mcp_config(path: Path, environ: dict[str, str] | None = None) -> McpConfig:
    """Read and check the file; raise McpConfigError with one line on any problem."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise McpConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise McpConfigError(f"{path} is not valid JSON: {exc}") from None
    expanded = _expand(raw, dict(os.environ) if environ is None else environ)
    try:
        return McpConfig.model_validate(expanded)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Never the input itself: it may hold a secret read from the environment.
        where = ".".join(str(p) for p in first["loc"] if p not in ("stdio", "http"))
        raise McpConfigError(f"{where}: {first['msg']}") from None
