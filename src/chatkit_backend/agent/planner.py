"""What the offline model says: the todo assistant's plain-English understanding."""

from __future__ import annotations

from .offline import Conversation, Plan

OFFLINE_NOTE = (
    "I'm running on the built-in **offline model**, so I only understand a few "
    "simple commands. To chat with a real model, set `GEMINI_API_KEY`, "
    "`OPENAI_API_KEY` or `ANTHROPIC_API_KEY` (or `MODEL` plus `MODEL_API_BASE` for "
    "Ollama, vLLM or any OpenAI-compatible server) and restart the server."
)


def todo_planner(conversation: Conversation) -> Plan:
    """Decide the offline reply for the newest user message."""
    text = conversation.user_text.strip()
    if not text:
        return Plan(text="What would you like to do?")
    return Plan(text=f"You said: “{text}”.\n\n{OFFLINE_NOTE}")
