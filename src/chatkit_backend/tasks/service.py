"""TaskService: the one place tasks are read and written, always as the context's user.

A task id that does not exist and one owned by someone else both raise TaskNotFound,
so no caller (REST client or agent tool) can tell the two apart.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    SQLColumnExpression,
    UnaryExpression,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from ..context import RequestContext
from ..db import MAX_SQL_INT, utcnow
from ..sqlite_writes import writing
from .models import TaskRow
from .schemas import (
    Order,
    PriorityCounts,
    SortField,
    Task,
    TaskCreate,
    TaskPage,
    TaskQuery,
    TaskStats,
    TaskUpdate,
)

# Enough to show the user a choice when a title is ambiguous; more is noise.
FIND_LIMIT = 20

Clock = Callable[[], date]
AnyRow = Row[*tuple[Any, ...]]


class TaskNotFound(Exception):
    """No task with this id belongs to the requesting user."""

    def __init__(self, task_id: int) -> None:
        super().__init__(f"Task {task_id} not found")
        self.task_id = task_id


_COLUMNS = (
    TaskRow.id,
    TaskRow.title,
    TaskRow.description,
    TaskRow.completed,
    TaskRow.priority,
    TaskRow.due_date,
    TaskRow.tags,
    TaskRow.created_at,
    TaskRow.updated_at,
    TaskRow.completed_at,
)

# Priorities are words; sorting needs their rank, not their spelling.
_PRIORITY_RANK = case({"low": 1, "medium": 2, "high": 3}, value=TaskRow.priority)

_SORT_KEYS: dict[SortField, SQLColumnExpression[Any]] = {
    "created_at": TaskRow.created_at,
    "updated_at": TaskRow.updated_at,
    "due_date": TaskRow.due_date,
    "priority": _PRIORITY_RANK,
    "title": TaskRow.title_key,
}

# The direction each sort reads best in when the caller does not pick one.
_NATURAL_ORDER: dict[SortField, Order] = {
    "created_at": "desc",
    "updated_at": "desc",
    "due_date": "asc",
    "priority": "desc",
    "title": "asc",
}


def _utc(moment: datetime) -> datetime:
    """Stored times are naive UTC; callers get them marked as UTC."""
    return moment.replace(tzinfo=UTC)


def _to_task(row: AnyRow) -> Task:
    return Task(
        id=row.id,
        title=row.title,
        description=row.description,
        completed=row.completed,
        priority=row.priority,
        due_date=row.due_date,
        tags=json.loads(row.tags),
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        completed_at=_utc(row.completed_at) if row.completed_at else None,
    )


def _found(row: AnyRow | None, task_id: int) -> Task:
    if row is None:
        raise TaskNotFound(task_id)
    return _to_task(row)


def _owned(ctx: RequestContext, task_id: int) -> ColumnElement[bool]:
    # An id SQL cannot hold cannot exist; asking would be a database error, not a 404.
    if not 0 < task_id <= MAX_SQL_INT:
        raise TaskNotFound(task_id)
    return and_(TaskRow.id == task_id, TaskRow.user_id == ctx.user_id)


# Each visible text column travels with its casefolded search key (see models.py).


def _title_values(title: str) -> dict[str, Any]:
    return {"title": title, "title_key": title.casefold()}


def _description_values(description: str) -> dict[str, Any]:
    return {"description": description, "description_key": description.casefold()}


def _tag_values(tags: builtins.list[str]) -> dict[str, Any]:
    keys = "".join(f"{tag.casefold()}\n" for tag in tags)
    return {"tags": json.dumps(tags, ensure_ascii=False), "tag_keys": f"\n{keys}"}


def _completion_values(done: bool, now: datetime) -> dict[str, Any]:
    """Set `completed`; the timestamps move only if it changes, so repeats are no-ops."""
    unchanged = TaskRow.completed.is_(done)
    return {
        "completed": done,
        "completed_at": case((unchanged, TaskRow.completed_at), else_=now) if done else None,
        "updated_at": case((unchanged, TaskRow.updated_at), else_=now),
    }


def _update_values(changes: TaskUpdate, now: datetime) -> dict[str, Any]:
    sent = changes.model_fields_set
    values: dict[str, Any] = {}
    if changes.title is not None:
        values |= _title_values(changes.title)
    if changes.description is not None:
        values |= _description_values(changes.description)
    if changes.tags is not None:
        values |= _tag_values(changes.tags)
    if changes.priority is not None:
        values["priority"] = changes.priority
    if "due_date" in sent:
        values["due_date"] = changes.due_date
    if changes.completed is not None:
        values |= _completion_values(changes.completed, now)
    if values:
        values["updated_at"] = now
    return values


def _is_overdue(today: date) -> ColumnElement[bool]:
    return and_(TaskRow.completed.is_(False), TaskRow.due_date < today)


def _is_not_overdue(today: date) -> ColumnElement[bool]:
    # Spelled out rather than not_(_is_overdue()): a NULL due date would make that NULL.
    return or_(TaskRow.completed.is_(True), TaskRow.due_date.is_(None), TaskRow.due_date >= today)


def _filters(user_id: str, query: TaskQuery, today: date) -> builtins.list[ColumnElement[bool]]:
    where: builtins.list[ColumnElement[bool]] = [TaskRow.user_id == user_id]
    if query.completed is not None:
        where.append(TaskRow.completed.is_(query.completed))
    if query.priority is not None:
        where.append(TaskRow.priority == query.priority)
    if query.tag is not None:
        where.append(TaskRow.tag_keys.contains(f"\n{query.tag.casefold()}\n", autoescape=True))
    if query.search:
        term = query.search.casefold()
        where.append(
            or_(
                TaskRow.title_key.contains(term, autoescape=True),
                TaskRow.description_key.contains(term, autoescape=True),
            )
        )
    if query.due_before is not None:
        where.append(TaskRow.due_date <= query.due_before)
    if query.due_after is not None:
        where.append(TaskRow.due_date >= query.due_after)
    if query.overdue is not None:
        where.append(_is_overdue(today) if query.overdue else _is_not_overdue(today))
    return where


def _ordering(query: TaskQuery) -> tuple[UnaryExpression[Any], UnaryExpression[Any]]:
    descending = (query.order or _NATURAL_ORDER[query.sort]) == "desc"
    key = _SORT_KEYS[query.sort]
    first = key.desc() if descending else key.asc()
    if query.sort == "due_date":
        first = first.nulls_last()
    # The id breaks ties, so pages neither skip nor repeat tasks.
    return first, TaskRow.id.desc() if descending else TaskRow.id.asc()


class TaskService:
    """CRUD, listing and stats of one user's tasks at a time (the context's user)."""

    def __init__(self, engine: AsyncEngine, today: Clock = date.today) -> None:
        self.engine = engine
        # "Today" decides what is overdue; injectable for tests and per-user time zones.
        self._today = today

    async def create(self, ctx: RequestContext, data: TaskCreate) -> Task:
        now = utcnow()
        stmt = (
            insert(TaskRow)
            .values(
                user_id=ctx.user_id,
                completed=False,
                priority=data.priority,
                due_date=data.due_date,
                created_at=now,
                updated_at=now,
                completed_at=None,
                **_title_values(data.title),
                **_description_values(data.description),
                **_tag_values(data.tags),
            )
            .returning(*_COLUMNS)
        )
        async with writing(self.engine) as conn:
            row = (await conn.execute(stmt)).one()
        return _to_task(row)

    async def get(self, ctx: RequestContext, task_id: int) -> Task:
        stmt = select(*_COLUMNS).where(_owned(ctx, task_id))
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _found(row, task_id)

    async def list(self, ctx: RequestContext, query: TaskQuery | None = None) -> TaskPage:
        query = query or TaskQuery()
        where = _filters(ctx.user_id, query, self._today())
        page = (
            select(*_COLUMNS)
            .where(*where)
            .order_by(*_ordering(query))
            .limit(query.limit)
            .offset(query.offset)
        )
        async with self.engine.connect() as conn:
            total = await conn.scalar(select(func.count()).select_from(TaskRow).where(*where))
            rows = (await conn.execute(page)).all()
        return TaskPage(
            items=[_to_task(row) for row in rows],
            total=total or 0,
            limit=query.limit,
            offset=query.offset,
        )

    async def update(self, ctx: RequestContext, task_id: int, changes: TaskUpdate) -> Task:
        values = _update_values(changes, utcnow())
        if not values:
            return await self.get(ctx, task_id)
        return await self._update(ctx, task_id, values)

    async def complete(self, ctx: RequestContext, task_id: int) -> Task:
        return await self._update(ctx, task_id, _completion_values(True, utcnow()))

    async def reopen(self, ctx: RequestContext, task_id: int) -> Task:
        return await self._update(ctx, task_id, _completion_values(False, utcnow()))

    async def delete(self, ctx: RequestContext, task_id: int) -> Task:
        stmt = delete(TaskRow).where(_owned(ctx, task_id)).returning(*_COLUMNS)
        async with writing(self.engine) as conn:
            row = (await conn.execute(stmt)).first()
        return _found(row, task_id)

    async def stats(self, ctx: RequestContext) -> TaskStats:
        today = self._today()
        is_open = TaskRow.completed.is_(False)

        def count(*conditions: ColumnElement[bool]) -> Any:
            return func.count().filter(and_(*conditions))

        stmt = select(
            func.count().label("total"),
            count(TaskRow.completed.is_(True)).label("completed"),
            count(_is_overdue(today)).label("overdue"),
            count(is_open, TaskRow.due_date == today).label("due_today"),
            count(is_open, TaskRow.priority == "low").label("low"),
            count(is_open, TaskRow.priority == "medium").label("medium"),
            count(is_open, TaskRow.priority == "high").label("high"),
        ).where(TaskRow.user_id == ctx.user_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).one()
        return TaskStats(
            total=row.total,
            completed=row.completed,
            pending=row.total - row.completed,
            overdue=row.overdue,
            due_today=row.due_today,
            by_priority=PriorityCounts(low=row.low, medium=row.medium, high=row.high),
        )

    async def find_by_title(
        self, ctx: RequestContext, words: str | Iterable[str]
    ) -> builtins.list[Task]:
        """Tasks whose title contains every word, ignoring case; open ones first, newest first.

        A phrase works as well as a list of words: "buy bread" == ["buy", "bread"].
        """
        phrases = [words] if isinstance(words, str) else words
        keys = [part.casefold() for phrase in phrases for part in phrase.split()]
        if not keys:
            return []
        stmt = (
            select(*_COLUMNS)
            .where(
                TaskRow.user_id == ctx.user_id,
                *(TaskRow.title_key.contains(key, autoescape=True) for key in keys),
            )
            .order_by(TaskRow.completed, TaskRow.created_at.desc(), TaskRow.id.desc())
            .limit(FIND_LIMIT)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_to_task(row) for row in rows]

    async def _update(self, ctx: RequestContext, task_id: int, values: dict[str, Any]) -> Task:
        stmt = update(TaskRow).where(_owned(ctx, task_id)).values(values).returning(*_COLUMNS)
        async with writing(self.engine) as conn:
            row = (await conn.execute(stmt)).first()
        return _found(row, task_id)
