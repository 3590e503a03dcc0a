"""The default agent: a concise todo assistant acting on the signed-in user's tasks."""

from __future__ import annotations

from datetime import date

from agents import Agent, Model, ModelSettings, RunContextWrapper, Tool

INSTRUCTIONS = """You are a helpful, concise todo assistant.
Today's date is {today} ({weekday}).
- Turn relative dates ("tomorrow", "next friday") into ISO dates (YYYY-MM-DD).
- When the user names a task by its title, call list_tasks first to find its id.
- After using a tool, say briefly what you did. Never invent task ids."""


def instructions_for(today: date) -> str:
    return INSTRUCTIONS.format(today=today.isoformat(), weekday=today.strftime("%A"))


def build_agent(model: Model, tools: list[Tool]) -> Agent[object]:
    """The todo agent on `model`, with today's date given in its instructions."""

    def instructions(_ctx: RunContextWrapper[object], _agent: Agent[object]) -> str:
        return instructions_for(date.today())

    return Agent(
        name="Todo assistant",
        instructions=instructions,
        model=model,
        tools=tools,
        # Without this LiteLLM drops the provider's usage chunk from streamed replies.
        model_settings=ModelSettings(include_usage=True),
    )
