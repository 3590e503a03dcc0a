"""TaskService directly: title lookup for the agent, and what "overdue" means as days pass."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.context import RequestContext
from chatkit_backend.tasks.schemas import TaskCreate, TaskQuery, TaskUpdate
from chatkit_backend.tasks.service import FIND_LIMIT, TaskNotFound, TaskService

ALICE = RequestContext(user_id="alice")
BOB = RequestContext(user_id="bob")


class Clock:
    """A settable "today"."""

    def __init__(self, today: date) -> None:
        self.today = today

    def __call__(self) -> date:
        return self.today


@pytest.fixture
def clock() -> Clock:
    return Clock(date(2026, 3, 10))


@pytest.fixture
def service(engine: AsyncEngine, clock: Clock) -> TaskService:
    return TaskService(engine, today=clock)


async def add(
    service: TaskService, title: str, ctx: RequestContext = ALICE, **fields: object
) -> int:
    task = await service.create(ctx, TaskCreate.model_validate({"title": title, **fields}))
    return task.id


async def found(service: TaskService, words: str | list[str]) -> list[str]:
    return [task.title for task in await service.find_by_title(ALICE, words)]


# find_by_title --------------------------------------------------------------


async def test_find_by_title_needs_every_word_in_any_case(service: TaskService) -> None:
    await add(service, "Buy bread")
    await add(service, "Buy milk")
    await add(service, "bake BREAD and buy butter")

    assert sorted(await found(service, "buy bread")) == ["Buy bread", "bake BREAD and buy butter"]
    assert await found(service, ["MILK", "buy"]) == ["Buy milk"]
    assert await found(service, ["buy  milk"]) == ["Buy milk"]
    assert await found(service, "buy cheese") == []


async def test_find_by_title_lists_open_tasks_first_then_newest(service: TaskService) -> None:
    done = await add(service, "bread 1")
    await add(service, "bread 2")
    await add(service, "bread 3")
    await service.complete(ALICE, done)
    assert await found(service, "bread") == ["bread 3", "bread 2", "bread 1"]


async def test_find_by_title_ignores_description_and_other_users(service: TaskService) -> None:
    await add(service, "errand", description="buy bread")
    await add(service, "buy bread", ctx=BOB)
    assert await found(service, "bread") == []


async def test_find_by_title_without_words_finds_nothing(service: TaskService) -> None:
    await add(service, "anything")
    assert await found(service, "   ") == []
    assert await found(service, []) == []


async def test_find_by_title_folds_unicode_and_keeps_wildcards_literal(
    service: TaskService,
) -> None:
    await add(service, "Straße fegen")
    await add(service, "50% Rabatt nutzen")
    await add(service, "500 Rabatt")
    assert await found(service, "STRASSE") == ["Straße fegen"]
    assert await found(service, "50% rabatt") == ["50% Rabatt nutzen"]
    assert await found(service, "5_0") == []


async def test_find_by_title_is_capped(service: TaskService) -> None:
    for i in range(FIND_LIMIT + 3):
        await add(service, f"note {i}")
    assert len(await found(service, "note")) == FIND_LIMIT


# overdue and today ----------------------------------------------------------


async def overdue(service: TaskService) -> list[str]:
    page = await service.list(ALICE, TaskQuery(overdue=True, sort="title"))
    return [task.title for task in page.items]


async def test_a_task_becomes_overdue_the_day_after_it_is_due(
    service: TaskService, clock: Clock
) -> None:
    await add(service, "pay rent", due_date=clock.today)
    stats = await service.stats(ALICE)
    assert (stats.due_today, stats.overdue) == (1, 0)
    assert await overdue(service) == []

    clock.today += timedelta(days=1)
    stats = await service.stats(ALICE)
    assert (stats.due_today, stats.overdue) == (0, 1)
    assert await overdue(service) == ["pay rent"]


async def test_completing_a_task_stops_it_being_overdue(service: TaskService, clock: Clock) -> None:
    late = await add(service, "late", due_date=clock.today - timedelta(days=3))
    await add(service, "no date")
    assert await overdue(service) == ["late"]

    await service.complete(ALICE, late)
    assert await overdue(service) == []
    assert (await service.stats(ALICE)).overdue == 0

    await service.reopen(ALICE, late)
    assert await overdue(service) == ["late"]


async def test_clearing_the_due_date_stops_a_task_being_overdue(
    service: TaskService, clock: Clock
) -> None:
    late = await add(service, "late", due_date=clock.today - timedelta(days=1))
    await service.update(ALICE, late, TaskUpdate.model_validate({"due_date": None}))
    assert await overdue(service) == []
    not_overdue = await service.list(ALICE, TaskQuery(overdue=False))
    assert [task.title for task in not_overdue.items] == ["late"]


async def test_completed_at_survives_a_repeated_complete(service: TaskService) -> None:
    task_id = await add(service, "once")
    first = await service.complete(ALICE, task_id)
    again = await service.complete(ALICE, task_id)
    assert first.completed_at is not None
    assert again.completed_at == first.completed_at
    assert again.updated_at == first.updated_at


async def test_foreign_ids_raise_task_not_found(service: TaskService) -> None:
    task_id = await add(service, "mine")
    with pytest.raises(TaskNotFound):
        await service.get(BOB, task_id)
    with pytest.raises(TaskNotFound):
        await service.delete(BOB, task_id)
    assert (await service.get(ALICE, task_id)).title == "mine"
