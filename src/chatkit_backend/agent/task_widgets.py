"""The task list widget: what `list_tasks` shows, with buttons to complete and delete.

Built the way the ChatKit SDK asks for (its named widget classes are deprecated): a
`.widget` template, task_list.widget, filled in with data prepared here. Dates read
exactly as in the chat replies (dates.py).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from chatkit.widgets import DynamicWidgetRoot, WidgetRoot, WidgetTemplate

from ..tasks.schemas import Task
from .dates import due_text, is_overdue

COMPLETE = "task.complete"
REOPEN = "task.reopen"
DELETE = "task.delete"
ACTIONS = (COMPLETE, REOPEN, DELETE)

_TEMPLATE = WidgetTemplate.from_file(str(Path(__file__).with_name("task_list.widget")))
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


def _status(tasks: list[Task]) -> str:
    count = len(tasks)
    done = sum(task.completed for task in tasks)
    text = f"{count} task" if count == 1 else f"{count} tasks"
    return f"{text}, {done} done" if done else text


def _row(task: Task, today: date) -> dict[str, Any]:
    due = None
    if task.due_date is not None:
        phrase = due_text(task.due_date, today, completed=task.completed)
        due = phrase[:1].upper() + phrase[1:]
    overdue = task.due_date is not None and is_overdue(
        task.due_date, today, completed=task.completed
    )
    toggle = (
        {"action": REOPEN, "label": "Reopen", "icon": "reload"}
        if task.completed
        else {"action": COMPLETE, "label": "Done", "icon": "check"}
    )
    return {
        "key": task_key(task.id),
        "id": task.id,
        "title": f"#{task.id} {task.title}",
        "completed": task.completed,
        "priority": task.priority,
        "priorityColor": _PRIORITY_COLOR[task.priority],
        "due": due,
        "dueColor": "danger" if overdue else "secondary",
        "toggle": toggle,
    }


def task_list_widget(tasks: list[Task], today: date) -> DynamicWidgetRoot:
    """A ListView of `tasks`; an empty list says so instead of rendering nothing."""
    return _TEMPLATE.build(
        {
            "status": _status(tasks) if tasks else None,
            "deleteAction": DELETE,
            "tasks": [_row(task, today) for task in tasks],
        }
    )


def copy_text(tasks: list[Task]) -> str:
    """The plain-text form of the list (what "copy" gives, and what the model reads).

    Dates stay ISO here: the model reads this on later turns and must not misread them.
    """
    if not tasks:
        return "No tasks."
    return "\n".join(
        f"[{'x' if t.completed else ' '}] #{t.id} {t.title}"
        + (f" (due {t.due_date.isoformat()})" if t.due_date else "")
        + f" [{t.priority}]"
        for t in tasks
    )
