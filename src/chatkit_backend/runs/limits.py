"""Per-user limits shared by every worker: messages a minute, idempotency keys, daily tokens.

All state is in the database. The message rate uses fixed one-minute windows (one
upserted counter per user and minute): a burst straddling a boundary can reach twice
the limit, the usual price of a single-row counter that needs no cleanup job.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..context import RequestContext
from ..db import dialect_insert, utcnow
from ..errors import TooManyRequests
from .refusals import duplicate_request, minute_window, rate_limited
from .statements import run_statements
from .tables import IdempotencyKeyRow, RateWindowRow, UsageRow

IDEMPOTENCY_TTL = timedelta(hours=24)


class Limits:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        messages_per_minute: int,
        daily_token_budget: int | None,
    ) -> None:
        self.engine = engine
        self.messages_per_minute = messages_per_minute
        self.daily_token_budget = daily_token_budget
        self._sql = run_statements(engine.dialect.name)

    async def remember_key(self, key: str, ctx: RequestContext, conn: AsyncConnection) -> None:
        """Record an Idempotency-Key (checked by `check_idempotency_key`); 409
        `duplicate_request` if the user sent it in the last 24 h."""
        now = utcnow()
        await conn.execute(
            delete(IdempotencyKeyRow).where(
                IdempotencyKeyRow.user_id == ctx.user_id,
                IdempotencyKeyRow.key == key,
                IdempotencyKeyRow.created_at < now - IDEMPOTENCY_TTL,
            )
        )
        inserted = await conn.execute(
            dialect_insert(self.engine, IdempotencyKeyRow.__table__)
            .values(user_id=ctx.user_id, key=key, created_at=now)
            .on_conflict_do_nothing()
        )
        if inserted.rowcount == 0:
            raise duplicate_request()

    async def count_message(self, ctx: RequestContext, conn: AsyncConnection) -> None:
        """Count one message against the user's per-minute limit; 429 when over it.

        In the caller's transaction: a refused message is rolled back, so it does not
        count, and hammering does not push the window further.
        """
        now = utcnow()
        window = minute_window(now)
        count = (
            await conn.execute(
                self._sql.count_message, {"user_id": ctx.user_id, "window_start": window}
            )
        ).scalar_one()
        if count == 1:
            # First message of a new window: drop this user's old windows.
            await conn.execute(
                delete(RateWindowRow).where(
                    RateWindowRow.user_id == ctx.user_id, RateWindowRow.window_start < window
                )
            )
        if count > self.messages_per_minute:
            raise rate_limited(self.messages_per_minute, now)

    async def check_budget(self, ctx: RequestContext) -> None:
        """429 once the user's tokens today (UTC) reach DAILY_TOKEN_BUDGET."""
        if not self.daily_token_budget:
            return
        now = utcnow()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        used = await self.tokens_since(ctx, midnight)
        if used >= self.daily_token_budget:
            retry = math.ceil((midnight + timedelta(days=1) - now).total_seconds())
            raise TooManyRequests(
                f"You have used today's token budget ({self.daily_token_budget} tokens). "
                "It resets at midnight UTC.",
                code="token_budget_exceeded",
                headers={"Retry-After": str(retry)},
            )

    async def tokens_since(self, ctx: RequestContext, since: datetime) -> int:
        async with self.engine.connect() as conn:
            used = await conn.scalar(
                select(
                    func.coalesce(func.sum(UsageRow.input_tokens + UsageRow.output_tokens), 0)
                ).where(UsageRow.user_id == ctx.user_id, UsageRow.created_at >= since)
            )
        return int(used or 0)
