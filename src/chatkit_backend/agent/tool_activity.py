"""How a tool call shows in the chat and is remembered, for tools other than the todo ones
(agent/todo_tools.py does the same for its own): a workflow task while it runs, client
effects for other frontends, a hidden record replayed to the model on later turns (and
shown by the REST API), and the tool-calls metric."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from agents import RunContextWrapper
from chatkit.agents import AgentContext
from chatkit.types import ClientEffectEvent, CustomTask, HiddenContextItem, ThreadItemDoneEvent

from .. import metrics
from ..chat.store import new_id
from ..chat.tool_record import TOOL_RECORD
from ..text_rules import storable

log = logging.getLogger(__name__)

Output = dict[str, Any]
# The longest error text shown in the chat's activity line.
TITLE_CHARS = 120


def failure(kind: str, message: str) -> Output:
    return {"ok": False, "error": kind, "message": message}


async def run_recorded(
    ctx: RunContextWrapper[Any],
    name: str,
    arguments: dict[str, Any],
    running: str,
    work: Callable[[], Awaitable[Output]],
) -> str:
    """Run `work` as the tool call `name`, shown and recorded; return what the model reads."""
    run = ctx.context
    call_id = getattr(ctx, "tool_call_id", None) or new_id("tool_call")
    arguments, running = storable(arguments), storable(running)
    shown = isinstance(run, AgentContext)
    index = 0
    if shown:
        await run.stream(
            ClientEffectEvent(
                name="tool_call", data={"id": call_id, "name": name, "args": arguments}
            )
        )
        await run.add_workflow_task(CustomTask(title=running, status_indicator="loading"))
        assert run.workflow_item is not None
        index = len(run.workflow_item.workflow.tasks) - 1
    try:
        output = await work()
    except Exception:
        log.exception("tool %s failed", name)
        output = failure("unavailable", f"{name} failed. Please try again in a moment.")
    output = storable(output)
    metrics.TOOL_CALLS.labels(name, "ok" if output["ok"] else output["error"]).inc()
    if shown:
        done = f"Ran {name}" if output["ok"] else f"{name} failed: {output['message']}"
        await run.update_workflow_task(
            CustomTask(
                title=done[:TITLE_CHARS],
                status_indicator="complete",
                icon="check" if output["ok"] else "info",
            ),
            index,
        )
        await run.stream(
            ClientEffectEvent(
                name="tool_result", data={"id": call_id, "name": name, "result": output}
            )
        )
        await run.stream(
            ThreadItemDoneEvent(
                item=HiddenContextItem(
                    id=new_id("tool_call"),
                    thread_id=run.thread.id,
                    created_at=datetime.now(),
                    content={
                        "kind": TOOL_RECORD,
                        "call_id": call_id,
                        "name": name,
                        "arguments": arguments,
                        "output": output,
                    },
                )
            )
        )
    return json.dumps(output)
