"""Logging set-up for the service (one format for the app, uvicorn and libraries)."""

from __future__ import annotations

import logging

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format=TEXT_FORMAT, force=True)
    # LiteLLM logs request details (URLs, sometimes headers) at INFO: keep it quiet.
    for noisy in ("LiteLLM", "litellm", "httpx", "openai.agents"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
