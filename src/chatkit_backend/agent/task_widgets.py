"""The task list widget: what `list_tasks` shows, with buttons to complete and delete."""

from __future__ import annotations

from datetime import date

from chatkit.actions import ActionConfig
from chatkit.widgets import (
    Badge,
    Button,
    Caption,
    Col,
    ListView,
    ListViewItem,
    Row,
    Text,
    WidgetRoot,
)

from ..tasks.schemas import Task

COMPLETE = "task.complete"
REOPEN = "task.reopen"
DELETE = "task.delete"
ACTIONS = (COMPLETE, REOPEN, DELETE)

_KEY_PREFIX = "task-"
_PRIORITY_COLOR = {"high": "danger", "medium": "warning", "low": "secondary"}


def task_key(task_id: int) -> str:
    return f"{_KEY_PREFIX}{task_id}"


def task_ids_of(widget: WidgetRoot) -> list[int]:
    """The ids of the tasks a rendered list shows, in order (read back from item keys)."""
    ids = []
    for child in getattr(widget, "children", None) or []:
        key = getattr(child, "key", None) or ""
        if key.startswith(_KEY_PREFIX) and key[len(_KEY_PREFIX) :].isdigit():
            ids.append(int(key[len(_KEY_PREFIX) :]))
    return ids


def _due_caption(task: Task, today: date) -> Caption | None:
    if task.due_date is None:
        return None
    overdue = not task.completed and task.due_date < today
    label = "today" if task.due_date == today else task.due_date.strftime("%a %d %b")
    return Caption(
        value=("Overdue: " if overdue else "Due ") + label,
        color="danger" if overdue else "secondary",
        size="sm",
    )


def _row(task: Task, today: date) -> ListViewItem:
    details: list[object] = [
        Badge(label=task.priority, color=_PRIORITY_COLOR[task.priority], size="sm")
    ]
    due = _due_caption(task, today)
    if due is not None:
        details.append(due)
    toggle = ActionConfig(type=REOPEN if task.completed else COMPLETE, payload={"task_id": task.id})
    return ListViewItem(
        key=task_key(task.id),
        children=[
            Row(
                gap=3,
                align="center",
                children=[
                    Col(
                        flex=1,
                        gap=1,
                        children=[
                            Text(
                                value=f"#{task.id} {task.title}",
                                lineThrough=task.completed,
                                color="secondary" if task.completed else None,
                                weight="medium",
                            ),
                            Row(gap=2, align="center", children=details),
                        ],
                    ),
                    Button(
                        label="Reopen" if task.completed else "Done",
                        iconStart="reload" if task.completed else "check",
                        onClickAction=toggle,
                        size="sm",
                        variant="outline",
                    ),
                    Button(
                        label="Delete",
                        onClickAction=ActionConfig(type=DELETE, payload={"task_id": task.id}),
                        size="sm",
                        variant="ghost",
                        color="danger",
                    ),
                ],
            )
        ],
    )


def task_list_widget(tasks: list[Task], today: date) -> ListView:
    """A ListView of `tasks`; an empty list says so instead of rendering nothing."""
    if not tasks:
        return ListView(
            key="tasks-empty",
            children=[ListViewItem(children=[Text(value="No tasks here.", color="secondary")])],
        )
    done = sum(t.completed for t in tasks)
    return ListView(
        status={"text": f"{len(tasks)} tasks, {done} done", "icon": "check-circle"},
        children=[_row(task, today) for task in tasks],
    )


def copy_text(tasks: list[Task]) -> str:
    """The plain-text form of the list (what "copy" gives, and what the model reads)."""
    if not tasks:
        return "No tasks."
    return "\n".join(
        f"[{'x' if t.completed else ' '}] #{t.id} {t.title}"
        + (f" (due {t.due_date.isoformat()})" if t.due_date else "")
        + f" [{t.priority}]"
        for t in tasks
    )
