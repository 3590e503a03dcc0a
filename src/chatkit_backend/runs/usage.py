"""Token usage per run, and the caller's totals per day (GET /api/usage)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..auth import current_context
from ..context import RequestContext
from ..db import utcnow
from ..deps import get_engine
from .statements import run_statements
from .tables import UsageRow


class RunUsage(BaseModel):
    user_id: str
    thread_id: str
    run_id: str
    model: str
    input_tokens: int
    output_tokens: int
    duration_ms: int


def usage_row(usage: RunUsage) -> dict[str, object]:
    """The `usage` table row of a finished run."""
    return {**usage.model_dump(), "created_at": utcnow()}


async def record_usage(engine: AsyncEngine, usage: RunUsage) -> None:
    async with engine.begin() as conn:
        await conn.execute(run_statements(engine.dialect.name).insert_usage, usage_row(usage))


class UsageTotals(BaseModel):
    input_tokens: int
    output_tokens: int
    turns: int


class DayUsage(UsageTotals):
    date: date


class UsageReport(BaseModel):
    days: int
    total: UsageTotals
    by_day: list[DayUsage]


router = APIRouter(prefix="/api/usage", tags=["usage"])


@router.get("", response_model=UsageReport)
async def usage_report(
    request: Request,
    ctx: Annotated[RequestContext, Depends(current_context)],
    engine: Annotated[AsyncEngine, Depends(get_engine)],
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> UsageReport:
    """The caller's tokens and turns per UTC day over the last `days` days."""
    since = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    day = func.date(UsageRow.created_at)
    query = (
        select(
            day.label("day"),
            func.sum(UsageRow.input_tokens),
            func.sum(UsageRow.output_tokens),
            func.count(),
        )
        .where(UsageRow.user_id == ctx.user_id, UsageRow.created_at >= since)
        .group_by(day)
        .order_by(day)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    by_day = [
        DayUsage(
            date=row[0] if isinstance(row[0], date) else date.fromisoformat(str(row[0])),
            input_tokens=int(row[1]),
            output_tokens=int(row[2]),
            turns=int(row[3]),
        )
        for row in rows
    ]
    total = UsageTotals(
        input_tokens=sum(d.input_tokens for d in by_day),
        output_tokens=sum(d.output_tokens for d in by_day),
        turns=sum(d.turns for d in by_day),
    )
    return UsageReport(days=days, total=total, by_day=by_day)
