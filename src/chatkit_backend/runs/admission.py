"""Admission of a message-producing request: budget, run lock, rate, idempotency.

Called by the routes once they know the request produces a run, before any stream
starts, so every refusal is a status code (409 or 429) rather than a broken stream.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from ..context import RequestContext
from ..errors import BadRequest
from ..text_rules import name_problem
from .lease import Lease
from .limits import Limits
from .postgres_admission import admit_on_postgres
from .registry import RunRegistry

# The idempotency_keys.key column is a String(255).
MAX_KEY_LENGTH = 255


def check_idempotency_key(key: str) -> None:
    """400 for a key that cannot be stored; a 409 would say it had been seen before."""
    if len(key) > MAX_KEY_LENGTH:
        raise BadRequest(
            f"Idempotency-Key is too long ({len(key)} characters; at most {MAX_KEY_LENGTH}).",
            code="invalid_idempotency_key",
        )
    if problem := name_problem(key):
        raise BadRequest(f"Idempotency-Key {problem}.", code="invalid_idempotency_key")


class Admission:
    def __init__(self, limits: Limits, registry: RunRegistry) -> None:
        self.limits = limits
        self.registry = registry

    async def admit(
        self, thread_id: str, ctx: RequestContext, idempotency_key: str | None
    ) -> Lease:
        """A lease on the thread's run lock, or an ApiError saying why not."""
        if idempotency_key:
            check_idempotency_key(idempotency_key)
        await self.limits.check_budget(ctx)
        engine = self.registry.engine
        if engine.dialect.name == "postgresql":
            # The same rules in one round trip (postgres_admission.py).
            return await admit_on_postgres(
                engine,
                self.registry,
                messages_per_minute=self.limits.messages_per_minute,
                thread_id=thread_id,
                ctx=ctx,
                idempotency_key=idempotency_key,
            )

        async def count_and_remember(conn: AsyncConnection) -> None:
            await self.limits.count_message(ctx, conn)
            # Last, so a request refused for another reason can be retried with its key.
            if idempotency_key:
                await self.limits.remember_key(idempotency_key, ctx, conn)

        # One transaction: a refusal anywhere leaves no lock, count or key behind.
        return await self.registry.acquire(thread_id, ctx, then=count_and_remember)
