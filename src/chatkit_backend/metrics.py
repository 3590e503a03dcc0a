"""Prometheus metrics, correct across worker processes.

With several workers `chatkit-backend serve` sets PROMETHEUS_MULTIPROC_DIR before they
start, so every worker writes its samples there and /metrics aggregates them all. One
process keeps its samples in memory and /metrics reads them from there.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from .auth import current_context
from .context import RequestContext

# prometheus_client picks where samples live once, when it is imported: in files when
# PROMETHEUS_MULTIPROC_DIR was set by then, else in memory. /metrics must read them from
# the same place, whatever the variable says later.
SAMPLES_IN_FILES = values.ValueClass is not values.MutexValue

TURNS = Counter("chatkit_turns", "Agent turns by outcome.", ["model", "outcome"])
TURN_SECONDS = Histogram(
    "chatkit_turn_seconds",
    "Duration of an agent turn.",
    buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
)
FIRST_TOKEN_SECONDS = Histogram(
    "chatkit_first_token_seconds",
    "Time from the start of a turn to its first text delta.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30),
)
TOOL_CALLS = Counter("chatkit_tool_calls", "Tool calls by tool and outcome.", ["tool", "outcome"])
TOKENS = Counter("chatkit_tokens", "Model tokens by direction.", ["model", "kind"])
ACTIVE_STREAMS = Gauge(
    "chatkit_active_streams", "Streams being served now.", multiprocess_mode="livesum"
)
ERRORS = Counter("chatkit_errors", "Errors by kind.", ["kind"])
# PostgreSQL: in use near capacity, with errors{kind="database_busy"} rising, means the
# pools are too small for the load (or the database too slow): docs/scaling.md.
DB_CONNECTIONS_IN_USE = Gauge(
    "chatkit_db_connections_in_use",
    "PostgreSQL connections checked out of the workers' pools now.",
    multiprocess_mode="livesum",
)
DB_CONNECTIONS_CAPACITY = Gauge(
    "chatkit_db_connections_capacity",
    "Most PostgreSQL connections the workers' pools may open (pool size + overflow).",
    multiprocess_mode="livesum",
)


def exposition() -> bytes:
    if SAMPLES_IN_FILES:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()


router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(_ctx: Annotated[RequestContext, Depends(current_context)]) -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
