"""A run's hold on its thread's run lock (taken and released by runs/registry.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from uuid import uuid4


def new_run_id() -> str:
    """A run's id, made here: the client's X-Request-Id (up to 128 characters, and free to
    repeat) is neither short enough for `active_runs.run_id` nor unique."""
    return f"run_{uuid4().hex}"


@dataclass
class Lease:
    """The right to run `thread_id`; hand it back with `RunRegistry.release`."""

    thread_id: str
    run_id: str
    user_id: str
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    # The finished run's usage row (runs/accounting.py), written when the lock is released.
    usage: dict[str, object] | None = field(default=None, repr=False)
    released: bool = False
