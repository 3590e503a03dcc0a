"""A turn's admission on PostgreSQL: one call of `chatkit_admit`, one round trip.

The function (migration 0009) takes the user's advisory lock, checks the thread's run
lock, the user's concurrent runs, the minute's messages and the Idempotency-Key, and
writes the lock row, the count and the key, or nothing if it refuses. It runs without
a transaction around it, so BEGIN and COMMIT cost no round trips of their own: with
200 streams starting at once, each round trip before the first event waits for the
event loop to come round, and admission took seven of them.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ..context import RequestContext
from ..db import autocommit_engine, utcnow
from .lease import Lease, new_run_id
from .limits import IDEMPOTENCY_TTL
from .refusals import (
    duplicate_request,
    minute_window,
    rate_limited,
    run_in_progress,
    too_many_runs,
)
from .registry import RunRegistry

_ADMIT = text(
    "SELECT refusal, running FROM chatkit_admit(:user_id, :thread_id, :run_id, :instance, "
    ":now, :fresh, :window_start, :max_runs, :messages_per_minute, :key, "
    ":keys_expired_before)"
)
# The function's limits are PostgreSQL integers; a larger setting means no limit anyway.
_INT_MAX = 2**31 - 1


async def admit_on_postgres(
    engine: AsyncEngine,
    registry: RunRegistry,
    *,
    messages_per_minute: int,
    thread_id: str,
    ctx: RequestContext,
    idempotency_key: str | None,
) -> Lease:
    """A lease on the thread's run lock, or the refusal (refusals.py) saying why not."""
    now = utcnow()
    lease = Lease(thread_id=thread_id, run_id=new_run_id(), user_id=ctx.user_id)
    async with autocommit_engine(engine).connect() as conn:
        row = (
            await conn.execute(
                _ADMIT,
                {
                    "user_id": ctx.user_id,
                    "thread_id": thread_id,
                    "run_id": lease.run_id,
                    "instance": registry.instance,
                    "now": now,
                    "fresh": now - registry.stale_after,
                    "window_start": minute_window(now),
                    "max_runs": min(registry.max_runs_per_user, _INT_MAX),
                    "messages_per_minute": min(messages_per_minute, _INT_MAX),
                    "key": idempotency_key or None,
                    "keys_expired_before": now - IDEMPOTENCY_TTL,
                },
            )
        ).one()
    match row.refusal:
        case None:
            return registry.hold(lease)
        case "run_in_progress":
            raise run_in_progress()
        case "too_many_runs":
            raise too_many_runs(row.running)
        case "rate_limited":
            raise rate_limited(messages_per_minute, now)
        case "duplicate_request":
            raise duplicate_request()
    raise RuntimeError(f"chatkit_admit answered an unknown refusal: {row.refusal!r}")
