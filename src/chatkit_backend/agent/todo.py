"""The default agent: a concise todo assistant acting on the signed-in user's tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from agents import Agent, RunContextWrapper
from chatkit.actions import Action
from chatkit.agents import AgentContext
from chatkit.server import stream_widget
from chatkit.store import Store
from chatkit.types import (
    HiddenContextItem,
    NoticeEvent,
    SyncCustomActionResponse,
    ThreadItemDoneEvent,
    ThreadItemReplacedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
    WidgetItem,
)

from ..chat.store import new_id
from ..context import RequestContext
from ..tasks.schemas import Task
from ..tasks.service import TaskNotFound, TaskService
from . import task_widgets
from .planner import make_todo_planner
from .setup import AgentSetup, fill_prompt
from .todo_tools import TOOLS, TodoContext

INSTRUCTIONS = """You are a helpful, concise todo assistant.
Today's date is {today} ({weekday}).
- Turn relative dates ("tomorrow", "next friday") into ISO dates (YYYY-MM-DD).
- When the user names a task by its title, call list_tasks with a search first to find its id.
- list_tasks also shows the user the tasks as a list with buttons: do not repeat every task
  in your reply unless asked; summarise.
- For what is due (today, this week, by a date) or overdue, call list_tasks with
  due_after/due_before or overdue.
- After using a tool, say briefly what you did. Never invent task ids."""

Clock = Callable[[], date]


@dataclass(frozen=True)
class Outcome:
    """What a widget action did: done, its task gone since, or not an action we know."""

    kind: Literal["done", "gone", "invalid"]
    message: str


def instructions_for(today: date) -> str:
    return INSTRUCTIONS.format(today=today.isoformat(), weekday=today.strftime("%A"))


class TodoKit:
    """The todo assistant: agent, tools, the task list widget and its actions."""

    def __init__(
        self,
        tasks: TaskService,
        store: Store[RequestContext],
        today: Clock = date.today,
        *,
        system_prompt: str | None = None,
    ) -> None:
        self.tasks = tasks
        self.store = store
        self.today = today
        self.system_prompt = system_prompt
        self.planner = make_todo_planner(today)
        self._agent: Agent[Any] | None = None

    def instructions(self, user_id: str) -> str:
        """This turn's instructions: SYSTEM_PROMPT if set, else the todo assistant's own."""
        if self.system_prompt is not None:
            return fill_prompt(self.system_prompt, today=self.today(), user_id=user_id)
        return instructions_for(self.today())

    def build_agent(self, setup: AgentSetup) -> Agent[Any]:
        # Built once: the instructions are a function (the date and the user are read per
        # turn), and the model comes with each run, so every turn can share the agent.
        if self._agent is None:

            def instructions(ctx: RunContextWrapper[Any], _agent: Agent[Any]) -> str:
                return self.instructions(ctx.context.request_context.user_id)

            self._agent = Agent(name="Todo assistant", instructions=instructions, tools=list(TOOLS))
        if setup.tools:
            # The server's own tools (MCP) change as servers come and go: added per turn.
            return self._agent.clone(tools=[*self._agent.tools, *setup.tools])
        return self._agent

    def tool_names(self) -> frozenset[str]:
        return frozenset(tool.name for tool in TOOLS)

    def new_context(
        self, thread: ThreadMetadata, store: Store[RequestContext], ctx: RequestContext
    ) -> AgentContext[RequestContext]:
        return TodoContext(thread=thread, store=store, request_context=ctx, tasks=self.tasks)

    async def after_run(
        self, context: AgentContext[RequestContext]
    ) -> AsyncIterator[ThreadStreamEvent]:
        # The list is rendered after the reply, from the database, so that a task the
        # same turn completed or deleted shows its real state.
        if not isinstance(context, TodoContext) or context.listed_task_ids is None:
            return
        tasks = await self._current(context.request_context, context.listed_task_ids)
        if context.listed_task_ids and not tasks:
            return  # the turn deleted what it listed ("clear completed"): nothing to show
        widget = task_widgets.task_list_widget(tasks, self.today())
        async for event in stream_widget(
            context.thread, widget, task_widgets.copy_text(tasks), new_id
        ):
            yield event

    async def _current(self, ctx: RequestContext, ids: list[int]) -> list[Task]:
        found = []
        for task_id in ids:
            try:
                found.append(await self.tasks.get(ctx, task_id))
            except TaskNotFound:
                continue  # deleted since it was listed
        return found

    async def _apply(self, action: Action[str, Any], ctx: RequestContext) -> Outcome:
        """Carry out a widget action; say what happened."""
        payload = action.payload if isinstance(action.payload, dict) else {}
        task_id = payload.get("task_id")
        if action.type not in task_widgets.ACTIONS or not isinstance(task_id, int):
            return Outcome("invalid", "That action is not supported.")
        try:
            if action.type == task_widgets.COMPLETE:
                task = await self.tasks.complete(ctx, task_id)
                return Outcome("done", f"The user marked task #{task.id} '{task.title}' as done.")
            if action.type == task_widgets.REOPEN:
                task = await self.tasks.reopen(ctx, task_id)
                return Outcome("done", f"The user reopened task #{task.id} '{task.title}'.")
            task = await self.tasks.delete(ctx, task_id)
            return Outcome("done", f"The user deleted task #{task.id} '{task.title}'.")
        except TaskNotFound:
            # An old widget's button: the refreshed widget drops the row.
            return Outcome(
                "gone", f"Task #{task_id} no longer exists, so it is gone from the list."
            )

    async def _refreshed(self, sender: WidgetItem, ctx: RequestContext) -> WidgetItem:
        tasks = await self._current(ctx, task_widgets.task_ids_of(sender.widget))
        return sender.model_copy(
            update={
                "widget": task_widgets.task_list_widget(tasks, self.today()),
                "copy_text": task_widgets.copy_text(tasks),
            }
        )

    def _note(self, thread: ThreadMetadata, text: str) -> HiddenContextItem:
        # Tells the model on later turns what the user did through the widget.
        return HiddenContextItem(
            id=new_id("message"), thread_id=thread.id, created_at=datetime.now(), content=text
        )

    async def action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        ctx: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        outcome = await self._apply(action, ctx)
        if outcome.kind == "done":
            yield ThreadItemDoneEvent(item=self._note(thread, outcome.message))
        else:
            yield NoticeEvent(level="warning", message=outcome.message)
        if sender is not None:
            # Replaced, not updated: only a replacement is stored, so a reload agrees.
            yield ThreadItemReplacedEvent(item=await self._refreshed(sender, ctx))

    async def sync_action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        ctx: RequestContext,
    ) -> SyncCustomActionResponse:
        outcome = await self._apply(action, ctx)
        # A sync answer carries no message: a task gone since is answered by the
        # refreshed widget without it; without a widget to refresh, it is an error.
        if outcome.kind == "invalid" or (outcome.kind == "gone" and sender is None):
            raise ValueError(outcome.message)
        if outcome.kind == "done":
            await self.store.add_thread_item(thread.id, self._note(thread, outcome.message), ctx)
        if sender is None:
            return SyncCustomActionResponse()
        updated = await self._refreshed(sender, ctx)
        # Nothing persists a sync action's result for us: a reload must show the truth.
        await self.store.save_item(thread.id, updated, ctx)
        return SyncCustomActionResponse(updated_item=updated)
