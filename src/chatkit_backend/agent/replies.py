"""What the offline model says after a tool call, from the tool's own output (never made up).

A listing answers in one sentence: the chat shows the tasks themselves in the task
list widget right after the reply, so the text does not list them again.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from .dates import day_text, due_text, next_week, week_end
from .offline import ToolResult

EXAMPLE_ADD = "“add a task to buy bread tomorrow”"

# Lists inside questions ("which one?") stay short.
MAX_LISTED = 10
MAX_ERROR_CHARS = 200


def as_dict(output: Any) -> dict[str, Any] | None:
    """A tool's output as a dict: tools may return JSON, or a dict the SDK stringified."""
    if isinstance(output, dict):
        return output
    if isinstance(output, str):
        for load in (json.loads, ast.literal_eval):
            try:
                loaded = load(output)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(loaded, dict):
                return loaded
    return None


def _md(text: str) -> str:
    """A title safe inside Markdown emphasis."""
    return re.sub(r"([\\`*_~\[\]])", r"\\\1", text)


def _iso(raw: Any) -> date | None:
    if not isinstance(raw, str):
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


def title_md(task: dict[str, Any]) -> str:
    return _md(str(task.get("title") or "(untitled)"))


def _task_line(task: dict[str, Any], today: date) -> str:
    details = []
    due = _iso(task.get("due_date"))
    if due is not None:
        details.append(due_text(due, today, completed=bool(task.get("completed"))))
    if task.get("priority") in ("high", "low"):
        details.append(f"{task['priority']} priority")
    line = f"- #{task.get('id')} {title_md(task)}"
    if details:
        line += f" ({', '.join(details)})"
    return line + (" ✓" if task.get("completed") else "")


def task_lines(tasks: Sequence[dict[str, Any]], total: int, today: date) -> str:
    lines = [_task_line(task, today) for task in tasks[:MAX_LISTED]]
    if total > len(lines):
        lines.append(f"- …and {total - len(lines)} more")
    return "\n".join(lines)


def tasks_of(output: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = output.get("tasks")
    return [task for task in tasks if isinstance(task, dict)] if isinstance(tasks, list) else []


def _due_scope(arguments: dict[str, Any], today: date) -> str:
    """What a listing's due-date filter was, as words: " due this week", ""."""
    after, before = _iso(arguments.get("due_after")), _iso(arguments.get("due_before"))
    if after is None and before is None:
        return ""
    if after is not None and after == before:
        return f" {due_text(after, today)}" if after >= today else f" due {day_text(after, today)}"
    if after == today and before == week_end(today):
        return " due this week"
    if (after, before) == next_week(today):
        return " due next week"
    if after is None and before is not None:
        return f" due by {day_text(before, today)}"
    if before is None and after is not None:
        return f" due from {day_text(after, today)} on"
    assert after is not None and before is not None
    return f" due {day_text(after, today)} to {day_text(before, today)}"


def _list_reply(arguments: dict[str, Any], output: dict[str, Any], today: date) -> str:
    tasks = tasks_of(output)
    count = output.get("count")
    total = count if isinstance(count, int) else len(tasks)
    status = arguments.get("status") or "all"
    if arguments.get("overdue"):
        status = "overdue"  # overdue tasks are pending ones; one word says both
    priority, search = arguments.get("priority"), arguments.get("search")
    words = (f"{priority}-priority" if priority else "", "" if status == "all" else status)
    kind = "".join(f"{word} " for word in words if word)  # "high-priority pending "
    scope = _due_scope(arguments, today) + (f" matching “{search}”" if search else "")
    if total == 0:
        if not (kind or scope):
            return f"Your list is empty. Add something with {EXAMPLE_ADD}."
        if kind == "pending " and not scope:
            return "You have no pending tasks. 🎉"
        return f"You have no {kind}tasks{scope}."
    noun = "task" if total == 1 else "tasks"
    text = f"You have {total} {kind}{noun}{scope}"
    done = sum(1 for task in tasks if task.get("completed"))
    if status == "all" and done and len(tasks) == total:
        text += f" ({done} done)"
    text += "."
    if total > len(tasks):
        text += f" The list below shows the first {len(tasks)}."
    return text


def _add_reply(task: dict[str, Any], today: date) -> str:
    details = []
    due = _iso(task.get("due_date"))
    if due is not None:
        details.append(due_text(due, today))
    if task.get("priority"):
        details.append(f"{task['priority']} priority")
    tags = task.get("tags")
    if isinstance(tags, list) and tags:
        details.append(" ".join(f"#{tag}" for tag in tags))
    text = f"Added **{title_md(task)}**"
    if details:
        text += f" ({', '.join(details)})"
    if task.get("id") is not None:
        text += f" as task #{task['id']}"
    return text + "."


def _update_reply(arguments: dict[str, Any], task: dict[str, Any], today: date) -> str:
    name = f"**{title_md(task)}** (#{task.get('id')})"
    if "title" in arguments:
        return f"Renamed task #{task.get('id')} to **{title_md(task)}**."
    if "priority" in arguments:
        return f"{name} is now {task.get('priority')} priority."
    if "due_date" in arguments:
        due = _iso(task.get("due_date"))
        return f"{name} is now {due_text(due, today)}." if due else f"{name} has no due date."
    if arguments.get("completed") is False:
        return f"Reopened {name}."
    if arguments.get("completed") is True:
        return f"Marked **{title_md(task)}** as done. ✓"
    return f"Updated {name}."


def _failure_reply(result: ToolResult, output: dict[str, Any]) -> str:
    message = str(output.get("message") or "").strip()
    task_id = result.arguments.get("task_id")
    if output.get("error") == "not_found" and task_id is not None:
        return f"I couldn't find task #{task_id}."
    if result.name == "add_task":
        return f"I couldn't add that task: {message}" if message else "I couldn't add that task."
    return f"That didn't work: {message}" if message else "That didn't work."


def describe(result: ToolResult, today: date) -> str:
    """The reply after a tool call, from what the tool returned."""
    output = as_dict(result.output)
    if output is None:
        return f"Sorry, that didn't work: {str(result.output)[:MAX_ERROR_CHARS]}"
    if not output.get("ok"):
        return _failure_reply(result, output)
    if result.name == "list_tasks":
        return _list_reply(result.arguments, output, today)
    task = output.get("task")
    if not isinstance(task, dict):
        return "Done."
    if result.name == "add_task":
        return _add_reply(task, today)
    if result.name == "complete_task":
        return f"Marked **{title_md(task)}** as done. ✓"
    if result.name == "delete_task":
        return f"Deleted task #{task.get('id')} **{title_md(task)}**."
    if result.name == "update_task":
        return _update_reply(result.arguments, task, today)
    return "Done."


def cleared_reply(found: int, deletions: Sequence[ToolResult]) -> str:
    """After deleting the completed tasks a listing found (`found` of them in all)."""
    deleted = sum(1 for result in deletions if (as_dict(result.output) or {}).get("ok"))
    noun = "task" if deleted == 1 else "tasks"
    text = f"Cleared {deleted} completed {noun}."
    if deleted < len(deletions):
        text += f" {len(deletions) - deleted} could not be deleted."
    if found > len(deletions):
        text += f" {found - len(deletions)} more are left: say “clear completed tasks” again."
    return text
