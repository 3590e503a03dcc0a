"""A custom assistant: one function tool, and a widget that shows its result.

Run it from the repository root with

    AGENT=examples.temperature_agent:make_agent chatkit-backend serve

The server calls `make_agent` once at start-up (a check) and then for every turn, with
an `AgentSetup`: who is asking, in which thread, the server's settings and the tools it
configures. The tool reaches the chat through `ctx.context`, ChatKit's `AgentContext`.
"""

from __future__ import annotations

from typing import Any, Literal

from agents import Agent, RunContextWrapper, function_tool
from chatkit.agents import AgentContext
from chatkit.widgets import DynamicWidgetRoot

from chatkit_backend.agent.setup import AgentSetup

Unit = Literal["celsius", "fahrenheit"]


def convert(value: float, unit: Unit) -> tuple[float, Unit]:
    """`value` in the other unit, rounded to one decimal."""
    if unit == "celsius":
        return round(value * 9 / 5 + 32, 1), "fahrenheit"
    return round((value - 32) * 5 / 9, 1), "celsius"


def symbol(unit: Unit) -> str:
    return "°C" if unit == "celsius" else "°F"


def result_card(value: float, unit: Unit, converted: float, to: Unit) -> DynamicWidgetRoot:
    """A small card with the conversion (a widget is plain ChatKit component JSON)."""
    return DynamicWidgetRoot.model_validate(
        {
            "type": "Card",
            "size": "sm",
            "children": [
                {"type": "Caption", "value": "Temperature", "color": "secondary"},
                {
                    "type": "Title",
                    "value": f"{value:g} {symbol(unit)} = {converted:g} {symbol(to)}",
                    "size": "md",
                },
            ],
        }
    )


@function_tool
async def convert_temperature(
    ctx: RunContextWrapper[AgentContext[Any]], value: float, unit: Unit
) -> str:
    """Convert a temperature between Celsius and Fahrenheit.

    Args:
        value: The temperature to convert.
        unit: The unit `value` is in.
    """
    converted, to = convert(value, unit)
    text = f"{value:g} {symbol(unit)} is {converted:g} {symbol(to)}"
    # Shown in the chat as a card; the copy text is what "copy" puts on the clipboard.
    await ctx.context.stream_widget(result_card(value, unit, converted, to), copy_text=text)
    return text


def make_agent(setup: AgentSetup) -> Agent[AgentContext[Any]]:
    """The factory AGENT names: called per turn (and once at start-up as a check)."""
    return Agent(
        name="Temperature helper",
        instructions=(
            "You convert temperatures between Celsius and Fahrenheit with the "
            "convert_temperature tool, then say the result in one short sentence. "
            f"Today is {setup.today.isoformat()}."
        ),
        tools=[convert_temperature, *setup.tools],
    )
