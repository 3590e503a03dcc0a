"""What happens when a run ends: its usage row and its metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from .. import metrics
from ..context import RequestContext
from .lease import new_run_id
from .usage import RunUsage, record_usage, usage_row

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    thread_id: str
    model: str
    outcome: str  # completed | cancelled | error | timeout
    seconds: float
    first_token_seconds: float | None
    input_tokens: int
    output_tokens: int


class RunAccounting:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def finished(self, ctx: RequestContext, run: RunOutcome) -> None:
        metrics.TURNS.labels(run.model, run.outcome).inc()
        metrics.TURN_SECONDS.observe(run.seconds)
        if run.first_token_seconds is not None:
            metrics.FIRST_TOKEN_SECONDS.observe(run.first_token_seconds)
        metrics.TOKENS.labels(run.model, "input").inc(run.input_tokens)
        metrics.TOKENS.labels(run.model, "output").inc(run.output_tokens)
        if run.outcome in {"error", "timeout"}:
            metrics.ERRORS.labels(f"run_{run.outcome}").inc()
        usage = RunUsage(
            user_id=ctx.user_id,
            thread_id=run.thread_id,
            run_id=ctx.run.run_id if ctx.run is not None else new_run_id(),
            model=run.model,
            input_tokens=run.input_tokens,
            output_tokens=run.output_tokens,
            duration_ms=round(run.seconds * 1000),
        )
        if ctx.run is not None and not ctx.run.released:
            # Written with the lock's release, moments later: one transaction, not two.
            ctx.run.usage = usage_row(usage)
            return
        try:
            await record_usage(self.engine, usage)
        except Exception:
            # Losing one usage row must not turn a finished reply into an error.
            log.exception("could not record usage")
