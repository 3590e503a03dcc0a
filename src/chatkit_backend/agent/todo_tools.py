"""The todo agent's five function tools, acting only for the user of the run.

Each call shows as a workflow task while it runs ("Adding task…" -> "Added task
'Water the plants'"), and is recorded as a hidden thread item so later turns
replay it to the model as the function call and output it really was.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from agents import FunctionTool, ModelBehaviorError, RunContextWrapper, function_tool
from chatkit.agents import AgentContext
from chatkit.types import ClientEffectEvent, CustomTask, HiddenContextItem, ThreadItemDoneEvent
from pydantic import SkipValidation, ValidationError

from .. import metrics
from ..chat.store import new_id
from ..chat.tool_record import TOOL_RECORD
from ..context import RequestContext
from ..tasks.schemas import Task, TaskCreate, TaskQuery, TaskUpdate
from ..tasks.service import TaskNotFound, TaskService
from ..text_rules import storable

log = logging.getLogger(__name__)

LIST_LIMIT = 100
# What the model and the user are told when a tool fails for a reason of ours.
UNAVAILABLE = "The task list could not be reached just now. Please try again in a moment."
MAX_ERROR_CHARS = 300

Output = dict[str, Any]
Work = Callable[[TaskService, RequestContext], Awaitable[Output]]


class TodoContext(AgentContext[RequestContext]):
    """The run context of the todo agent: the ChatKit context plus the tasks service."""

    tasks: Annotated[TaskService, SkipValidation]
    # Set by list_tasks: the tasks to show as a widget once the reply is done.
    listed_task_ids: list[int] | None = None


def ok_task(task: Task) -> Output:
    return {"ok": True, "task": task.model_dump(mode="json")}


def failure(kind: str, message: str) -> Output:
    return {"ok": False, "error": kind, "message": message}


def tool_record(call_id: str, name: str, arguments: dict[str, Any], output: Output) -> Any:
    """The content of the hidden item that remembers one tool call."""
    return {
        "kind": TOOL_RECORD,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "output": output,
    }


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()))
    return f"{field}: {first['msg']}" if field else str(first["msg"])


async def _run(
    ctx: RunContextWrapper[TodoContext],
    name: str,
    arguments: dict[str, Any],
    running: str,
    work: Work,
    done: Callable[[Output], str],
) -> str:
    run = ctx.context
    call_id = getattr(ctx, "tool_call_id", None) or new_id("tool_call")
    # The model's arguments are shown and recorded as given, minus what cannot be
    # stored or sent (text_rules.py); the tasks service validates them itself.
    arguments, running = storable(arguments), storable(running)
    # Client effects tell any frontend (and the simple SSE format) what the agent is doing,
    # e.g. so a todo app can refresh its own task list.
    await run.stream(
        ClientEffectEvent(name="tool_call", data={"id": call_id, "name": name, "args": arguments})
    )
    await run.add_workflow_task(CustomTask(title=running, status_indicator="loading"))
    assert run.workflow_item is not None
    index = len(run.workflow_item.workflow.tasks) - 1
    try:
        output = await work(run.tasks, run.request_context)
    except TaskNotFound as exc:
        output = failure("not_found", f"No task with id {exc.task_id}.")
    except ValidationError as exc:
        output = failure("invalid", _validation_message(exc))
    except Exception:
        # A database (or any other) failure: the model and the user see a short
        # message; what happened goes to the log, with the request's ids (logs.py).
        log.exception("tool %s failed", name)
        output = failure("unavailable", UNAVAILABLE)
    metrics.TOOL_CALLS.labels(name, "ok" if output["ok"] else output["error"]).inc()
    title = done(output) if output["ok"] else f"{running.rstrip('…')} failed: {output['message']}"
    await run.update_workflow_task(
        CustomTask(
            title=title, status_indicator="complete", icon="check" if output["ok"] else "info"
        ),
        index,
    )
    await run.stream(
        ClientEffectEvent(name="tool_result", data={"id": call_id, "name": name, "result": output})
    )
    await run.stream(
        ThreadItemDoneEvent(
            item=HiddenContextItem(
                id=new_id("tool_call"),
                thread_id=run.thread.id,
                created_at=datetime.now(),
                content=tool_record(call_id, name, arguments, output),
            )
        )
    )
    return json.dumps(output)


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _tool_error(_ctx: RunContextWrapper[Any], error: Exception) -> str:
    """What the model gets when a tool fails outside `_run`."""
    if isinstance(error, ModelBehaviorError):
        # Bad arguments (a task_id that is not a number, ...) go back to the model as
        # data: the SDK's message names the tool and the field, in the model's own terms.
        return json.dumps(failure("invalid", str(error).splitlines()[0][:MAX_ERROR_CHARS]))
    # Anything else may carry internals (SQL, paths): those only go to the log.
    log.error("tool failed", exc_info=error)
    return json.dumps(failure("unavailable", UNAVAILABLE))


@function_tool(failure_error_function=_tool_error)
async def add_task(
    ctx: RunContextWrapper[TodoContext],
    title: str,
    description: str | None = None,
    priority: Literal["low", "medium", "high"] | None = None,
    due_date: str | None = None,
    tags: list[str] | None = None,
) -> str:
    """Add a task to the user's list.

    Args:
        title: What to do, short.
        description: Optional details.
        priority: low, medium (default) or high.
        due_date: Optional due date as YYYY-MM-DD.
        tags: Optional short labels.
    """
    args = _given(
        title=title, description=description, priority=priority, due_date=due_date, tags=tags
    )

    async def work(tasks: TaskService, rc: RequestContext) -> Output:
        return ok_task(await tasks.create(rc, TaskCreate.model_validate(args)))

    return await _run(
        ctx,
        "add_task",
        args,
        f"Adding task '{title}'…",
        work,
        lambda out: f"Added task '{out['task']['title']}'",
    )


@function_tool(failure_error_function=_tool_error)
async def list_tasks(
    ctx: RunContextWrapper[TodoContext],
    status: Literal["all", "pending", "completed"] | None = None,
    priority: Literal["low", "medium", "high"] | None = None,
    search: str | None = None,
    due_after: str | None = None,
    due_before: str | None = None,
    overdue: bool | None = None,
) -> str:
    """List the user's tasks (also shown to the user as a list with buttons).

    Args:
        status: all (default), pending or completed.
        priority: Only tasks of this priority.
        search: Only tasks whose title or description contains this text.
        due_after: Only tasks due on or after this date (YYYY-MM-DD).
        due_before: Only tasks due on or before this date (YYYY-MM-DD).
        overdue: true for only pending tasks whose due date has passed.
    """
    args = _given(
        status=status,
        priority=priority,
        search=search,
        due_after=due_after,
        due_before=due_before,
        overdue=overdue,
    )
    completed = {"pending": False, "completed": True}.get(status or "all")

    async def work(tasks: TaskService, rc: RequestContext) -> Output:
        # Validated here, not by the SDK: a bad date comes back to the model as data.
        query = TaskQuery.model_validate(
            {
                "completed": completed,
                "priority": priority,
                "search": search or None,
                "due_after": due_after,
                "due_before": due_before,
                "overdue": overdue,
                # What is due soonest first when the question is about due dates.
                "sort": "due_date" if due_after or due_before or overdue else "created_at",
                "order": "asc",
                "limit": LIST_LIMIT,
            }
        )
        page = await tasks.list(rc, query)
        ctx.context.listed_task_ids = [t.id for t in page.items]
        return {
            "ok": True,
            "count": page.total,
            "tasks": [t.model_dump(mode="json") for t in page.items],
        }

    return await _run(
        ctx,
        "list_tasks",
        args,
        "Looking up tasks…",
        work,
        lambda out: f"Found {out['count']} task{'s' if out['count'] != 1 else ''}",
    )


@function_tool(failure_error_function=_tool_error)
async def complete_task(ctx: RunContextWrapper[TodoContext], task_id: int) -> str:
    """Mark one of the user's tasks as done.

    Args:
        task_id: The task's id (from list_tasks).
    """

    async def work(tasks: TaskService, rc: RequestContext) -> Output:
        return ok_task(await tasks.complete(rc, task_id))

    return await _run(
        ctx,
        "complete_task",
        {"task_id": task_id},
        f"Completing task #{task_id}…",
        work,
        lambda out: f"Completed task '{out['task']['title']}'",
    )


@function_tool(failure_error_function=_tool_error)
async def delete_task(ctx: RunContextWrapper[TodoContext], task_id: int) -> str:
    """Delete one of the user's tasks for good.

    Args:
        task_id: The task's id (from list_tasks).
    """

    async def work(tasks: TaskService, rc: RequestContext) -> Output:
        return ok_task(await tasks.delete(rc, task_id))

    return await _run(
        ctx,
        "delete_task",
        {"task_id": task_id},
        f"Deleting task #{task_id}…",
        work,
        lambda out: f"Deleted task '{out['task']['title']}'",
    )


@function_tool(failure_error_function=_tool_error)
async def update_task(
    ctx: RunContextWrapper[TodoContext],
    task_id: int,
    title: str | None = None,
    description: str | None = None,
    priority: Literal["low", "medium", "high"] | None = None,
    due_date: str | None = None,
    completed: bool | None = None,
) -> str:
    """Change one of the user's tasks; only the fields given change.

    Args:
        task_id: The task's id (from list_tasks).
        title: New title.
        description: New details.
        priority: low, medium or high.
        due_date: New due date as YYYY-MM-DD.
        completed: true to mark done, false to reopen.
    """
    changes = _given(
        title=title,
        description=description,
        priority=priority,
        due_date=due_date,
        completed=completed,
    )

    async def work(tasks: TaskService, rc: RequestContext) -> Output:
        return ok_task(await tasks.update(rc, task_id, TaskUpdate.model_validate(changes)))

    return await _run(
        ctx,
        "update_task",
        {"task_id": task_id, **changes},
        f"Updating task #{task_id}…",
        work,
        lambda out: f"Updated task '{out['task']['title']}'",
    )


TOOLS: list[FunctionTool] = [add_task, list_tasks, complete_task, delete_task, update_task]
