"""REST /api/tasks: parse the request, call TaskService as the caller, return its answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncEngine

from ..auth import current_context
from ..context import RequestContext
from ..deps import get_engine
from .schemas import Task, TaskCreate, TaskPage, TaskQuery, TaskStats, TaskUpdate
from .service import TaskNotFound, TaskService


async def _task_not_found_as_404() -> AsyncIterator[None]:
    # Every route that takes an id can raise TaskNotFound; mapping it once keeps them thin.
    try:
        yield
    except TaskNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Task not found") from None


def get_task_service(engine: Annotated[AsyncEngine, Depends(get_engine)]) -> TaskService:
    """The service for one request (a dependency, so tests can swap the clock)."""
    return TaskService(engine)


Context = Annotated[RequestContext, Depends(current_context)]
Service = Annotated[TaskService, Depends(get_task_service)]

router = APIRouter(
    prefix="/api/tasks", tags=["tasks"], dependencies=[Depends(_task_not_found_as_404)]
)


@router.get("")
async def list_tasks(
    query: Annotated[TaskQuery, Query()], ctx: Context, service: Service
) -> TaskPage:
    return await service.list(ctx, query)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_task(data: TaskCreate, ctx: Context, service: Service) -> Task:
    return await service.create(ctx, data)


# Declared before /{task_id}, which would otherwise try to read "stats" as an id.
@router.get("/stats")
async def task_stats(ctx: Context, service: Service) -> TaskStats:
    return await service.stats(ctx)


@router.get("/{task_id}")
async def get_task(task_id: int, ctx: Context, service: Service) -> Task:
    return await service.get(ctx, task_id)


@router.patch("/{task_id}")
async def update_task(task_id: int, changes: TaskUpdate, ctx: Context, service: Service) -> Task:
    return await service.update(ctx, task_id, changes)


@router.delete("/{task_id}")
async def delete_task(task_id: int, ctx: Context, service: Service) -> Task:
    return await service.delete(ctx, task_id)


@router.post("/{task_id}/complete")
async def complete_task(task_id: int, ctx: Context, service: Service) -> Task:
    return await service.complete(ctx, task_id)


@router.post("/{task_id}/reopen")
async def reopen_task(task_id: int, ctx: Context, service: Service) -> Task:
    return await service.reopen(ctx, task_id)
