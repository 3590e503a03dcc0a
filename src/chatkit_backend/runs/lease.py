"""A run's hold on its thread's run lock (taken and released by runs/registry.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


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
