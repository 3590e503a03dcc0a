"""Logging set-up: text or JSON lines, each record carrying the request's ids.

`bind(...)` puts request_id, user_id, thread_id, run_id and model into a context variable;
asyncio copies it into tasks started afterwards, so a run's log lines carry the
ids of the request that started it.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s%(ids)s"
FIELDS = ("request_id", "user_id", "thread_id", "run_id", "model")

_ids: ContextVar[dict[str, str]] = ContextVar("log_ids", default={})  # noqa: B039 - never mutated


def bind(**ids: str | None) -> None:
    """Attach ids to every log record of the current request (and the tasks it starts)."""
    _ids.set({**_ids.get(), **{k: v for k, v in ids.items() if v}})


class ContextIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ids = _ids.get()
        for name in FIELDS:
            setattr(record, name, ids.get(name))
        record.ids = "".join(f" {k}={v}" for k, v in ids.items()) if ids else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for log shippers. (A dozen lines did not justify a dependency.)"""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ContextIds())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own handlers would print its lines in another format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # LiteLLM and the HTTP clients log every provider request (URLs, sometimes headers)
    # at INFO: a line per turn that says nothing the turn metrics do not.
    # The MCP client logs its server URLs (which may carry ${VAR} secrets) and every
    # message it sends (tool arguments) at DEBUG.
    noisy_loggers = ("LiteLLM", "litellm", "httpx", "httpx2", "httpcore", "httpcore2", "openai")
    for noisy in (*noisy_loggers, "openai.agents", "mcp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
