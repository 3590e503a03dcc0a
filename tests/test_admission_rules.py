"""The admission rules, answered alike by both implementations: SQLite's Python transaction
(runs/registry.py, runs/limits.py) and PostgreSQL's one-statement `chatkit_admit`
(migration 0009, runs/postgres_admission.py).

Which refusal wins when several apply, that a refusal writes nothing, and what an
admission writes. tests/test_admission.py and tests/test_runs.py check the same rules
through a live server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.context import RequestContext
from chatkit_backend.db import utcnow
from chatkit_backend.errors import ApiError
from chatkit_backend.runs.admission import Admission
from chatkit_backend.runs.limits import Limits
from chatkit_backend.runs.refusals import minute_window
from chatkit_backend.runs.registry import RunRegistry
from chatkit_backend.runs.tables import ActiveRunRow, IdempotencyKeyRow, RateWindowRow

ALICE = "alice"


@pytest.fixture
async def admission(engine: AsyncEngine) -> AsyncIterator[Admission]:
    registry = RunRegistry(engine, max_runs_per_user=1)
    try:
        yield Admission(Limits(engine, messages_per_minute=2, daily_token_budget=None), registry)
    finally:
        await registry.close()


async def refusal(admission: Admission, thread_id: str, key: str | None = None) -> str:
    with pytest.raises(ApiError) as refused:
        await admission.admit(thread_id, RequestContext(user_id=ALICE), key)
    return f"{refused.value.status} {refused.value.code}"


async def rows(engine: AsyncEngine) -> tuple[int, int, int]:
    """(live run locks, messages counted this minute, keys) of every user."""
    async with engine.connect() as conn:
        return (
            await conn.scalar(select(func.count()).select_from(ActiveRunRow)) or 0,
            await conn.scalar(
                select(func.coalesce(func.sum(RateWindowRow.count), 0)).where(
                    RateWindowRow.window_start == minute_window(utcnow())
                )
            )
            or 0,
            await conn.scalar(select(func.count()).select_from(IdempotencyKeyRow)) or 0,
        )


async def test_refusals_come_in_order_and_write_nothing(
    admission: Admission, engine: AsyncEngine
) -> None:
    # One run (the limit), on thr_a, with key k1; a second message this minute elsewhere.
    await admission.admit("thr_a", RequestContext(user_id=ALICE), "k1")
    assert await rows(engine) == (1, 1, 1)
    # A second run (on a registry allowing more): now a message to thr_a with k1 breaks
    # every rule at once.
    counting = Admission(admission.limits, RunRegistry(engine, max_runs_per_user=5))
    await counting.admit("thr_b", RequestContext(user_id=ALICE), None)
    before = await rows(engine)
    assert before == (2, 2, 1)
    assert await refusal(admission, "thr_a", "k1") == "409 run_in_progress"
    assert await refusal(admission, "thr_c", "k1") == "429 too_many_runs"
    assert await rows(engine) == before
    # Without the run limit: the rate, then the key.
    roomy = Admission(admission.limits, RunRegistry(engine, max_runs_per_user=5))
    assert await refusal(roomy, "thr_c", "k1") == "429 rate_limited"
    assert await rows(engine) == before
    generous = Admission(
        Limits(engine, messages_per_minute=5, daily_token_budget=None), roomy.registry
    )
    assert await refusal(generous, "thr_c", "k1") == "409 duplicate_request"
    assert await rows(engine) == before
    # And with none broken: the run, the count and the key, all written.
    lease = await generous.admit("thr_c", RequestContext(user_id=ALICE), "k2")
    assert lease.thread_id == "thr_c"
    assert await rows(engine) == (3, 3, 2)
    # Another user is refused for none of alice's: not her thread's lock, count or key.
    await generous.admit("thr_d", RequestContext(user_id="bob"), "k1")
    assert await rows(engine) == (4, 4, 3)


async def test_a_new_minute_drops_the_old_windows(
    admission: Admission, engine: AsyncEngine
) -> None:
    old = minute_window(utcnow()) - timedelta(minutes=3)
    async with engine.begin() as conn:
        await conn.execute(
            insert(RateWindowRow).values(
                [
                    {"user_id": ALICE, "window_start": old, "count": 30},
                    {"user_id": "bob", "window_start": old, "count": 30},
                ]
            )
        )
    await admission.admit("thr_a", RequestContext(user_id=ALICE), None)
    async with engine.connect() as conn:
        windows = (await conn.execute(select(RateWindowRow.user_id, RateWindowRow.count))).all()
    assert sorted(windows) == [(ALICE, 1), ("bob", 30)]


async def test_a_stale_lock_and_an_expired_key_are_taken_over(
    admission: Admission, engine: AsyncEngine
) -> None:
    long_ago = utcnow() - timedelta(days=2)
    async with engine.begin() as conn:
        await conn.execute(
            insert(ActiveRunRow).values(
                thread_id="thr_a",
                run_id="crashed",
                user_id=ALICE,
                instance="gone:1",
                started_at=long_ago,
                heartbeat_at=long_ago,
            )
        )
        await conn.execute(
            insert(IdempotencyKeyRow).values(user_id=ALICE, key="k1", created_at=long_ago)
        )
    lease = await admission.admit("thr_a", RequestContext(user_id=ALICE), "k1")
    async with engine.connect() as conn:
        run = (await conn.execute(select(ActiveRunRow))).one()
        key = (await conn.execute(select(IdempotencyKeyRow))).one()
    assert (run.run_id, run.instance) == (lease.run_id, admission.registry.instance)
    assert run.heartbeat_at > long_ago and key.created_at > long_ago
