"""What the offline model says: the todo assistant's plain-English understanding.

The newest user message becomes one intent: a reply (help, a question back), a
tool call (add, list) or an action on one task (complete, delete, update). An
action that names its task by title words first calls `list_tasks(search=...)`;
the Agents SDK then calls the planner again with that result, and the planner
picks the task (or asks which one). "Clear completed tasks" lists the completed
ones, then deletes each. After the last tool result it describes what happened
from the tools' own output (replies.py), so it never invents ids.

A message that is no command and no question ("buy eggs") adds a task, and the
reply says how to undo that. How dates are read: dates.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from .dates import find_date, next_week, parse_date, week_end
from .offline import Conversation, Plan, Planner, ToolRequest, ToolResult
from .replies import EXAMPLE_ADD, as_dict, cleared_reply, describe, task_lines, tasks_of, title_md

OFFLINE_NOTE = (
    "I'm running on the built-in **offline model**, so I only understand a few "
    "simple commands. To chat with a real model, set `GEMINI_API_KEY`, "
    "`OPENAI_API_KEY` or `ANTHROPIC_API_KEY` (or `MODEL` plus `MODEL_API_BASE` for "
    "Ollama, vLLM or any OpenAI-compatible server) and restart the server."
)

HELP = (
    "I can keep your todo list. Try:\n\n"
    "- “add a task to buy bread tomorrow”\n"
    "- “show my pending tasks”\n"
    "- “what is due this week?”\n"
    "- “mark buy bread as done”\n"
    "- “make task 2 high priority”\n\n"
    "I can also rename, reschedule (“move task 2 to friday”), reopen and delete tasks, "
    "and clear the completed ones."
)
GREETING = "Hi! 👋 I'm your todo assistant."
NOT_UNDERSTOOD = "Sorry, I didn't understand that."
THANKS_REPLY = "Glad to help! Anything else?"


# --- Intents ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Answer with text; no tool needed."""

    text: str


@dataclass(frozen=True)
class Target:
    """The task the user means: its id, or words of its title to search for."""

    task_id: int | None = None
    words: str = ""


@dataclass(frozen=True)
class Act:
    """Complete, delete or update one task; `changes` are update_task's fields."""

    tool: str
    target: Target
    changes: dict[str, Any] = field(default_factory=dict)
    # The same request said with an id ("delete task #{id}"), offered when several match.
    command: str = ""

    def request(self, task_id: int) -> ToolRequest:
        return ToolRequest(self.tool, {"task_id": task_id, **self.changes})

    def command_for(self, task_id: int) -> str:
        # Not str.format: a new title may contain braces.
        return self.command.replace("{id}", str(task_id))


@dataclass(frozen=True)
class Guess:
    """A tool call read from a message that named no command ("buy eggs" adds a task)."""

    request: ToolRequest


@dataclass(frozen=True)
class ClearCompleted:
    """Delete every completed task: list them, then delete each one."""


Intent = Reply | ToolRequest | Act | Guess | ClearCompleted


# --- Normalising the message -----------------------------------------------------------

# Phone keyboards type curly quotes; the patterns below expect straight ones.
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})

_THANKS_RE = re.compile(
    r"^(?:(?:ok(?:ay)?|great|perfect|awesome|cool|nice|got\s+it)[\s,!.]*)?"
    r"(?:(?:thanks|thank\s+you|thx|ty|cheers)(?:\s+(?:so\s+much|a\s+lot|again))?"
    r"|great|perfect|awesome|cool|nice|got\s+it)[\s!.]*$",
    re.I,
)
_GREETING_RE = re.compile(
    r"^(?:hi|hello|hey|hiya|heya|howdy|yo|hola|greetings|good\s+(?:morning|afternoon|evening|day))"
    r"(?:\s+there)?\b[\s,!.]*",
    re.I,
)
_POLITE_PREFIX_RE = re.compile(
    r"^(?:please|pls|plz|kindly|just|also|and|then|now|so|ok(?:ay)?|alright|"
    r"(?:can|could|would|will)\s+(?:you|u)|"
    r"i(?:'d|\s+would)\s+like\s+(?:you\s+)?to|i\s+(?:want|need)\s+you\s+to|"
    r"go\s+ahead\s+and|let's|lets|let\s+us)\b[\s,:;]*",
    re.I,
)
_POLITE_SUFFIX_RE = re.compile(
    r"[\s,]*(?:\b(?:please|pls|plz|thanks|thank\s+you|thx|for\s+me)\b|[.!?…]+)$", re.I
)
_HELP_RE = re.compile(
    r"^(?:help|commands|usage|menu|examples?|start|get\s+started|"
    r"what\s+(?:can|do)\s+you\s+(?:do|understand|know)|what\s+(?:are\s+you|is\s+this)|"
    r"who\s+are\s+you|how\s+(?:does\s+(?:this|it)|do\s+you)\s+work|"
    r"how\s+do\s+i\s+use\s+(?:this|it|you))$",
    re.I,
)


def _normalize(text: str) -> tuple[str, bool]:
    """The command without greetings, politeness and end punctuation; and if it greeted."""
    text = " ".join(text.translate(_QUOTES).split())
    greeted = False
    while True:
        before = text
        greeting = _GREETING_RE.match(text)
        if greeting:
            greeted = True
            text = text[greeting.end() :]
        text = _POLITE_PREFIX_RE.sub("", text, count=1)
        text = _POLITE_SUFFIX_RE.sub("", text).strip(" ,;:")
        if text == before:
            return text, greeted


def _tidy(text: str) -> str:
    """Whitespace and stray separators left behind after cutting phrases out."""
    text = re.sub(r"\s+([:,;])", r"\1", " ".join(text.split()))
    return re.sub(r"(^[\s,;:–-]+|[\s,;:–-]+$)", "", text)


def _cut(text: str, start: int, end: int) -> str:
    return _tidy(f"{text[:start]} {text[end:]}")


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        return text[1:-1].strip()
    return text


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _bad_date(phrase: str) -> Reply:
    return Reply(
        f"I couldn't read the date “{phrase}”. Try “tomorrow”, “friday”, “in 3 days” "
        "or a date like 2026-12-01."
    )


# --- Priorities ----------------------------------------------------------------------

_LEVELS = {
    "high": "high",
    "top": "high",
    "urgent": "high",
    "important": "high",
    "medium": "medium",
    "normal": "medium",
    "low": "low",
}
_LEVEL = r"(?P<level>high|top|medium|normal|low)"
# Priority phrases inside a new task's text. "urgent"/"important" count only where
# they cannot be part of the title: before the word "task", before a colon, at the end.
_PRIORITY_PHRASE_RES = (
    re.compile(rf"(?:\b(?:with|at|as)\s+)?(?:\ba\s+)?\b{_LEVEL}[\s-]+priority\b", re.I),
    re.compile(rf"\bpriority\s*(?::|=|is)?\s*{_LEVEL}\b", re.I),
    re.compile(
        r"\b(?P<level>urgent|important)(?=\s+(?:task|todo|to-do|reminder|item)\b|\s*:)", re.I
    ),
    re.compile(
        r"[\s,(-]*\b(?:it'?s\s+|is\s+|very\s+|super\s+)*(?P<level>urgent|important)\)?$", re.I
    ),
)
# A priority given as a whole value: "high", "high priority", "urgent".
_PRIORITY_VALUE_RE = re.compile(
    r"^(?:a\s+)?(?:(?P<level>high|top|medium|normal|low)(?:[\s-]+priority)?"
    r"|(?P<word>urgent|important))$",
    re.I,
)


def _take_priority(text: str) -> tuple[str | None, str]:
    """The priority a message asks for, and the message without that phrase."""
    for pattern in _PRIORITY_PHRASE_RES:
        match = pattern.search(text)
        if match:
            return _LEVELS[match.group("level").lower()], _cut(text, match.start(), match.end())
    return None, text


def _priority_value(text: str) -> str | None:
    match = _PRIORITY_VALUE_RE.match(text.strip())
    if match is None:
        return None
    return _LEVELS[(match.group("level") or match.group("word")).lower()]


# --- Which task ----------------------------------------------------------------------

_ID_RE = re.compile(
    r"^(?:(?:the|my)\s+)?(?:(?:task|todo|to-do|item)\s+)?(?:(?:number|no\.?|nr\.?)\s*)?"
    r"#?\s*(?P<id>\d{1,18})$",
    re.I,
)
_EVERY_TASK_RE = re.compile(r"^(?:all|every|everything|each)\b", re.I)
_TARGET_LEAD_RE = re.compile(
    r"^(?:(?:the|my|a|an|that|this)\s+)+"
    r"|^(?:task|todo|to-do|item|one|reminder)\s+(?:(?:called|named|titled|about|for|to|with)\s+)?",
    re.I,
)
_TARGET_TAIL_RE = re.compile(
    r"\s+(?:task|todo|to-do|item|one|reminder|thing)$"
    r"|\s+(?:from|off|on|in)\s+(?:my|the)\s+(?:(?:todo|to-do|task)\s+)?(?:list|tasks)$",
    re.I,
)


def _target(text: str) -> Target | Reply:
    """A task id ("task 3", "#3", "3") or the title words left after the filler."""
    text = _unquote(text)
    match = _ID_RE.match(text)
    if match:
        return Target(task_id=int(match.group("id")))
    if _EVERY_TASK_RE.match(text):
        return Reply("I can only do that one task at a time. Which one? Give its number or title.")
    while True:
        before = text
        text = _unquote(_TARGET_TAIL_RE.sub("", _TARGET_LEAD_RE.sub("", text)))
        if text == before:
            break
    if not text:
        return Reply("Which task? Tell me its number (“task 3”) or words from its title.")
    return Target(words=text)


def _act(tool: str, target_text: str, command: str, **changes: Any) -> Intent:
    target = _target(target_text)
    if isinstance(target, Reply):
        return target
    return Act(tool, target, changes, command)


# --- Intent handlers: each returns None when the message is not its kind -------------

Handler = Callable[[str, date], Intent | None]


def _help(text: str, today: date) -> Intent | None:
    return Reply(f"{HELP}\n\n{OFFLINE_NOTE}") if _HELP_RE.match(text) else None


_ADD_RE = re.compile(
    r"""
    ^(?:
        (?:add|create|new|insert|jot\s+down|note\s+down|write\s+down)
        (?:\s+(?:a|an|another|one|the))?(?:\s+new)?
        (?:\s+(?:task|todo|to-do|item|reminder|entry))?
      | make\s+(?:an?\s+(?:new\s+)?|new\s+)(?:task|todo|to-do|reminder)  # not "make task 2 ..."
      | remind\s+me(?:\s+(?:to|about|of))?
      | remember\s+to
      | (?:i\s+(?:need|have|must|should|ought)|i(?:'ve|\s+have)\s+got|i\s+gotta|need|got)\s+to
      | don'?t\s+(?:let\s+me\s+)?forget\s+(?:to|about)
      | (?:new\s+)?(?:task|todo|to-do|reminder)(?=\s*:)
    )
    (?:\s*[:–-]\s*|\s+(?:to|called|named|titled|saying|that\s+says)\s+|\s+|$)
    (?P<title>.*)$
    """,
    re.I | re.X,
)
_LIST_PHRASE = (
    r"(?:to|on|onto|in|into)\s+(?:my|the)\s+(?:(?:todo|to-do|task)\s+)?(?:list|tasks|todos)"
)
_TITLE_LIST_PHRASE_RE = re.compile(rf"^{_LIST_PHRASE}\b\s*:?|\s+{_LIST_PHRASE}$", re.I)
_TAG_RE = re.compile(r"(?<![\w#])#(?P<tag>[^\W\d][\w-]*)")


def _add(text: str, today: date) -> Intent | None:
    if not _ADD_RE.match(text):
        return None
    # Dates, priorities and #tags are cut out first: they may sit anywhere, even
    # between the command and the title ("add a high priority task to ...").
    arguments: dict[str, Any] = {}
    when = find_date(text, today)
    if when is not None:
        if when.value is None:
            return _bad_date(when.text)
        arguments["due_date"] = when.value.isoformat()
        text = _cut(text, when.start, when.end)
    # Tags before priorities, so "#urgent" stays a tag.
    tags = [match.group("tag") for match in _TAG_RE.finditer(text)]
    if tags:
        arguments["tags"] = tags
        text = _tidy(_TAG_RE.sub(" ", text))
    priority, text = _take_priority(text)
    if priority:
        arguments["priority"] = priority
    match = _ADD_RE.match(text)
    title = _unquote(_tidy(_TITLE_LIST_PHRASE_RE.sub("", match.group("title")))) if match else ""
    if not title:
        return Reply(f"What's the task? Try {EXAMPLE_ADD}.")
    return ToolRequest("add_task", {"title": _capitalise(title), **arguments})


_CLEAR_RE = re.compile(
    r"""
    ^(?:clear|delete|remove|erase|purge|clean\s+(?:up|out)|get\s+rid\s+of|trash|tidy\s+up)
    (?:\s+out)?(?:\s+(?:all|every|each)(?:\s+of)?)?(?:\s+(?:the|my))?\s+
    (?:
        (?:completed|complete|finished|done|checked[\s-]+off|ticked[\s-]+off)
        (?:\s+(?:ones|tasks?|todos?|to-?dos|items))?
      | (?:tasks?|todos?|to-?dos|items|ones)\s+(?:(?:that|which)\s+are\s+|i(?:'ve|\s+have)\s+)?
        (?:already\s+)?(?:completed|finished|done|checked\s+off)
    )
    (?:\s+(?:from|off|on|in)\s+(?:my|the)\s+(?:(?:todo|to-do|task)\s+)?list)?$
    """,
    re.I | re.X,
)


def _clear(text: str, today: date) -> Intent | None:
    return ClearCompleted() if _CLEAR_RE.match(text) else None


_REOPEN_RES = (
    re.compile(
        r"^(?:reopen|re-open|uncomplete|un-complete|unfinish|uncheck|untick|unmark|undo)\s+"
        r"(?P<target>.+)$",
        re.I,
    ),
    re.compile(
        r"^(?:mark|set|make)\s+(?P<target>.+?)\s+(?:as\s+|to\s+)?(?:not\s+(?:yet\s+)?"
        r"(?:done|completed?|finished)|undone|incomplete|unfinished|pending|open|to\s*-?do)$",
        re.I,
    ),
)


def _reopen(text: str, today: date) -> Intent | None:
    for pattern in _REOPEN_RES:
        match = pattern.match(text)
        if match:
            return _act("update_task", match.group("target"), "reopen task #{id}", completed=False)
    return None


_DONE = r"(?:done|complete|completed|finished|checked(?:\s+off)?|ticked\s+off)"
_COMPLETE_RES = (
    re.compile(rf"^(?:mark|set)\s+(?P<target>.+?)\s+(?:as\s+|to\s+)?{_DONE}$", re.I),
    re.compile(r"^(?:check|tick|cross)\s+(?P<target>.+?)\s+off(?:\s+.*)?$", re.I),
    re.compile(r"^(?:check|tick|cross)\s+off\s+(?P<target>.+)$", re.I),
    re.compile(r"^(?:complete|finish|close|done\s+with)\s+(?P<target>.+)$", re.I),
    re.compile(
        r"^i(?:'ve|\s+have)?\s+(?:just\s+)?(?:finished|completed|done|did)\s+(?P<target>.+)$",
        re.I,
    ),
    # "what is done?" is a question about the list, not a task called "what".
    re.compile(rf"^(?!(?:what|which|who|how)\b)(?P<target>.+?)\s+is\s+(?:now\s+)?{_DONE}$", re.I),
)


def _complete(text: str, today: date) -> Intent | None:
    for pattern in _COMPLETE_RES:
        match = pattern.match(text)
        if match:
            return _act("complete_task", match.group("target"), "complete task #{id}")
    return None


_DELETE_RE = re.compile(
    r"^(?:delete|remove|erase|drop|trash|discard|scrap|cancel|get\s+rid\s+of|"
    r"forget(?:\s+about)?)\s+(?P<target>.+)$",
    re.I,
)


def _delete(text: str, today: date) -> Intent | None:
    match = _DELETE_RE.match(text)
    return _act("delete_task", match.group("target"), "delete task #{id}") if match else None


_RENAME_RES = (
    # Quotes make titles that contain "to" unambiguous: rename "go to gym" to "gym".
    re.compile(
        r"^(?:rename|retitle)\s+\"(?P<target>[^\"]+)\"\s+(?:to|as|into)\s+(?P<value>.+)$", re.I
    ),
    re.compile(r"^(?:rename|retitle)\s+(?P<target>.+?)\s+(?:to|as|into)\s+(?P<value>.+)$", re.I),
    re.compile(
        r"^(?:change|set|update|edit)\s+(?:the\s+)?(?:title|name)\s+(?:of|for|on)\s+"
        r"(?P<target>.+?)\s+(?:to|as)\s+(?P<value>.+)$",
        re.I,
    ),
    re.compile(
        r"^(?:change|set|update|edit)\s+(?P<target>.+?)(?:'s)?\s+(?:title|name)\s+(?:to|as)\s+"
        r"(?P<value>.+)$",
        re.I,
    ),
)


def _rename_to(target: str, value: str) -> Intent:
    title = _capitalise(_unquote(value))
    if not title:
        return Reply("What should the new title be?")
    return _act("update_task", target, f"rename task #{{id}} to {title}", title=title)


def _rename(text: str, today: date) -> Intent | None:
    for pattern in _RENAME_RES:
        match = pattern.match(text)
        if match:
            return _rename_to(match.group("target"), match.group("value"))
    return None


_DUE_RES = (
    re.compile(
        r"^(?:change|set|update|move|make)\s+(?:the\s+)?(?:due\s+date|deadline|due|date)\s+"
        r"(?:of|for|on)\s+(?P<target>.+)\s+(?:to|as)\s+(?P<when>.+?)$",
        re.I,
    ),
    re.compile(
        r"^(?:change|set|update)\s+(?P<target>.+?)(?:'s)?\s+(?:due\s+date|deadline)\s+"
        r"(?:to|as)\s+(?P<when>.+)$",
        re.I,
    ),
    re.compile(r"^(?:make|set)\s+(?P<target>.+?)\s+due\s+(?P<when>.+)$", re.I),
    # Greedy target: split at the last "to", so titles like "go to gym" survive.
    re.compile(
        r"^(?:move|reschedule|postpone|push(?:\s+back)?|defer|delay|shift|bump)\s+"
        r"(?P<target>.+)\s+(?:to|until|till|for|by|on)\s+(?P<when>.+?)$",
        re.I,
    ),
)


def _due_to(target: str, when_text: str, today: date) -> Intent:
    when = parse_date(when_text, today)
    if when is None or when.value is None:
        return _bad_date(when_text)
    day = when.value.isoformat()
    return _act("update_task", target, f"move task #{{id}} to {day}", due_date=day)


def _due(text: str, today: date) -> Intent | None:
    for pattern in _DUE_RES:
        match = pattern.match(text)
        if match:
            target, when = match.group("target"), match.group("when")
            priority = _priority_value(when)  # "move task 2 to high priority"
            if priority:
                return _priority_to(target, priority)
            return _due_to(target, when, today)
    return None


_PRIORITY_RES = (
    re.compile(
        r"^(?:set|change|update|make|put)\s+(?:the\s+)?priority\s+(?:of|for|on)\s+"
        r"(?P<target>.+?)\s+(?:to|as|at)\s+(?P<value>.+)$",
        re.I,
    ),
    re.compile(
        r"^(?:set|change|update|make)\s+(?P<target>.+?)(?:'s)?\s+priority\s+(?:to|as|at)\s+"
        r"(?P<value>.+)$",
        re.I,
    ),
    re.compile(
        r"^(?:make|set|mark|put|flag|change|update)\s+(?P<target>.+?)\s+"
        r"(?:(?:to|as|at|with)\s+)?(?P<value>(?:a\s+)?(?:(?:high|top|medium|normal|low)"
        r"(?:[\s-]+priority)?|urgent|important))$",
        re.I,
    ),
)
_RAISE_RE = re.compile(
    r"^(?:prioriti[sz]e|raise\s+(?:the\s+)?priority\s+(?:of|for|on))\s+(?P<target>.+)$", re.I
)
_LOWER_RE = re.compile(
    r"^(?:deprioriti[sz]e|lower\s+(?:the\s+)?priority\s+(?:of|for|on))\s+(?P<target>.+)$", re.I
)


def _priority_to(target: str, priority: str) -> Intent:
    return _act("update_task", target, f"make task #{{id}} {priority} priority", priority=priority)


def _priority(text: str, today: date) -> Intent | None:
    for pattern in _PRIORITY_RES:
        match = pattern.match(text)
        if match:
            priority = _priority_value(match.group("value"))
            if priority is None:
                return Reply("Priority can be high, medium or low.")
            return _priority_to(match.group("target"), priority)
    for pattern, priority in ((_RAISE_RE, "high"), (_LOWER_RE, "low")):
        match = pattern.match(text)
        if match:
            return _priority_to(match.group("target"), priority)
    return None


_CHANGE_RE = re.compile(
    r"^(?:change|update|edit|set|switch)\s+(?P<target>.+?)\s+(?:to|into)\s+(?P<value>.+)$", re.I
)
_DONE_VALUE_RE = re.compile(rf"^{_DONE}$", re.I)
_OPEN_VALUE_RE = re.compile(r"^(?:not\s+done|undone|incomplete|pending|open|to\s*-?do)$", re.I)


def _change(text: str, today: date) -> Intent | None:
    """Change X to Y: what Y is (a priority, a date, a state) says which field changes."""
    match = _CHANGE_RE.match(text)
    if match is None:
        return None
    target, value = match.group("target"), match.group("value")
    priority = _priority_value(value)
    if priority:
        return _priority_to(target, priority)
    if parse_date(value, today) is not None:
        return _due_to(target, value, today)
    if _DONE_VALUE_RE.match(value):
        return _act("complete_task", target, "complete task #{id}")
    if _OPEN_VALUE_RE.match(value):
        return _act("update_task", target, "reopen task #{id}", completed=False)
    return _rename_to(target, value)


_FIND_RE = re.compile(
    r"^(?:find|search(?:\s+for)?|look\s+(?:for|up))\s+(?:(?:my|the)\s+)?"
    r"(?:(?:tasks?|todos?)\s+)?(?:(?:about|matching|containing|mentioning|called|named|with|for)"
    r"\s+)?(?P<search>.+)$",
    re.I,
)


def _find(text: str, today: date) -> Intent | None:
    match = _FIND_RE.match(text)
    if match is None:
        return None
    return ToolRequest("list_tasks", {"status": "all", "search": _unquote(match.group("search"))})


_TASKS_NOUN = r"(?:tasks?|todos?|to-?dos|to\s+dos|items|reminders|list|things)"
_LIST_START_RE = re.compile(
    r"^(?:list|show|display|view|see|get|give\s+me|tell\s+me|print|check|read|open|"
    r"let\s+me\s+see|what(?:'s|\s+is|\s+are|\s+do|\s+have)?|whats|which|how\s+many|"
    r"do\s+i\s+have|have\s+i|any|anything|is\s+there\s+anything)\b",
    re.I,
)
_BARE_LIST_RE = re.compile(
    rf"^(?:(?:all|my|the|every)\s+)*(?:[\w-]+\s+){{0,2}}{_TASKS_NOUN}$", re.I
)
_PENDING_RE = re.compile(
    r"\b(?:pending|open|remaining|outstanding|incomplete|unfinished|undone|uncompleted|active|"
    r"left|still|not\s+(?:yet\s+)?(?:done|completed?|finished)|"
    r"(?:to|be|get)\s+(?:done|completed|finished))\b",  # "what needs to be done today"
    re.I,
)
_COMPLETED_RE = re.compile(
    r"\b(?:completed|complete|done|finished|closed|checked\s+off|ticked\s+off)\b", re.I
)
_LIST_NOUN_RE = re.compile(
    rf"\b{_TASKS_NOUN}\b|\bto\s+do\b|\b(?:due|overdue|past\s+due|agenda|on\s+my\s+plate)\b", re.I
)
_LIST_PRIORITY_RE = re.compile(
    r"\b(?P<level>high|top|medium|normal|low)[\s-]*priority\b|\b(?P<word>urgent|important)\b",
    re.I,
)
_LIST_SEARCH_RE = re.compile(
    r"\b(?:about|matching|containing|mentioning|called|named|like)\s+(?P<search>.+)$", re.I
)


# Spans of time a listing can ask about ("what's due this week?").
_LIST_WHEN_RE = re.compile(
    r"\b(?:"
    r"(?P<overdue>overdue|past\s+due|late)"
    r"|(?P<today>today|tonight|this\s+(?:morning|afternoon|evening))"
    r"|(?P<tomorrow>tomorrow|tmrw|tmr)"
    r"|(?P<this_week>(?:this|the)\s+week|(?:the\s+)?rest\s+of\s+the\s+week)"
    r"|(?P<next_week>next\s+week)"
    r")\b",
    re.I,
)
# "what do I have today?": having plus a time span asks for the list too.
_HAVE_RE = re.compile(r"\b(?:i\s+have|have\s+i|i've\s+got|i\s+got)\b", re.I)
_UP_TO_RE = re.compile(r"\b(?:by|before|until|till)\s+$", re.I)


def _due_filter(text: str, today: date) -> dict[str, Any] | Reply:
    """The due-date filter a listing asks for: {} for none, list_tasks' arguments otherwise."""
    span = _LIST_WHEN_RE.search(text)
    if span is not None:
        if span.group("overdue"):
            return {"overdue": True}
        if span.group("this_week"):
            first, last = today, week_end(today)
        elif span.group("next_week"):
            first, last = next_week(today)
        else:
            first = last = today + timedelta(days=1 if span.group("tomorrow") else 0)
        return {"due_after": first.isoformat(), "due_before": last.isoformat()}
    when = find_date(text, today)
    if when is None:
        return {}
    if when.value is None:
        return _bad_date(when.text)
    day = when.value.isoformat()
    lead = text[when.start : when.end - len(when.text)]
    if _UP_TO_RE.search(lead):  # "due by friday": anything due up to then
        return {"due_before": day}
    return {"due_after": day, "due_before": day}


def _list(text: str, today: date) -> Intent | None:
    about_tasks = _LIST_NOUN_RE.search(text) or _PENDING_RE.search(text)
    has_span = _HAVE_RE.search(text) and _LIST_WHEN_RE.search(text)
    asks = _LIST_START_RE.match(text) and (about_tasks or has_span or _COMPLETED_RE.search(text))
    if not (asks or _BARE_LIST_RE.match(text)):
        return None
    arguments: dict[str, Any] = {"status": "all"}
    search = _LIST_SEARCH_RE.search(text)
    if search:
        arguments["search"] = _unquote(search.group("search"))
        text = text[: search.start()]  # "tasks about late fees" is not about lateness
    # "not done" holds "done": the pending words are checked first.
    if _PENDING_RE.search(text):
        arguments["status"] = "pending"
    elif _COMPLETED_RE.search(text):
        arguments["status"] = "completed"
    priority = _LIST_PRIORITY_RE.search(text)
    if priority:
        arguments["priority"] = _LEVELS[(priority.group("level") or priority.group("word")).lower()]
    due = _due_filter(text, today)
    if isinstance(due, Reply):
        return due
    if due and arguments["status"] == "all":
        arguments["status"] = "pending"  # what is due is what is still to do
    return ToolRequest("list_tasks", {**arguments, **due})


# Order matters. Adding comes first because a new task's title may say anything
# ("add a task to delete old mail"); reopening before completing because "mark X as
# not done" ends in "done"; the specific update forms before the generic "change X to Y".
INTENTS: tuple[tuple[str, Handler], ...] = (
    ("help", _help),
    ("add", _add),
    ("clear", _clear),
    ("reopen", _reopen),
    ("complete", _complete),
    ("delete", _delete),
    ("rename", _rename),
    ("due", _due),
    ("priority", _priority),
    ("change", _change),
    ("find", _find),
    ("list", _list),
)


def parse(user_text: str, today: date) -> Intent:
    """What the user asks for, as a reply, a tool call or an action on one task."""
    simple = " ".join(user_text.translate(_QUOTES).split())
    if _THANKS_RE.match(simple):
        return Reply(THANKS_REPLY)
    text, greeted = _normalize(simple)
    if not text:
        opening = GREETING if greeted else "What would you like to do?"
        return Reply(f"{opening} {HELP}\n\n{OFFLINE_NOTE}")
    for _name, handler in INTENTS:
        intent = handler(text, today)
        if intent is not None:
            return intent
    if not simple.endswith("?") and _looks_like_a_task(text):
        guess = _add(f"add {text}", today)
        if isinstance(guess, ToolRequest):
            return Guess(guess)
        if guess is not None:
            return guess  # a question back, e.g. about a date it cannot read
    return Reply(f"{NOT_UNDERSTOOD} {HELP}\n\n{OFFLINE_NOTE}")


# Openings of questions, chat and replies to the assistant: not things to do.
_NOT_A_TASK_RE = re.compile(
    r"^(?:what|whats|who|whom|whose|why|how|when|where|which|is|are|am|was|were|"
    r"can|could|would|will|should|shall|may|might|"
    r"(?:do|does|did|have|has|had)\s+(?:you|u|i|we|they|it)|"  # not "do laundry"
    r"i|i'm|im|me|my|mine|you|you're|youre|your|u|it|it's|its|that|that's|thats|this|these|"
    r"those|there|there's|they|we|he|she|"
    r"tell|show|list|yes|yeah|yep|yup|no|nope|nah|sure|maybe|ok|okay|k|lol|haha|hmm|hm|"
    r"bye|goodbye|good|great|nice|cool|awesome|perfect|fine|thanks|thank|cheers|hi|hello|hey|"
    r"help|stop|cancel|undo|again|huh|sorry|oops|nothing|nevermind|never|not|none|wow|oh|ah|"
    r"um|uh|test|testing|asdf|ping)\b",
    re.I,
)
MAX_GUESSED_WORDS = 12


def _looks_like_a_task(text: str) -> bool:
    """A short phrase that is no question or chat ("buy eggs"): the user wants it on the list."""
    words = text.split()
    return (
        0 < len(words) <= MAX_GUESSED_WORDS
        and not _NOT_A_TASK_RE.match(text)
        and any(char.isalpha() for char in text)
    )


# --- Picking the task named by title words ----------------------------------------


def _wants_completed(act: Act) -> bool:
    """Reopening looks among done tasks; everything else prefers pending ones."""
    return act.tool == "update_task" and act.changes.get("completed") is False


def _already(act: Act, task: dict[str, Any]) -> str | None:
    """A reply when the only match is already in the state the user asks for."""
    if act.tool == "complete_task":
        return f"**{title_md(task)}** (#{task.get('id')}) is already done. ✓"
    if _wants_completed(act):
        return f"**{title_md(task)}** (#{task.get('id')}) isn't done, so there's nothing to reopen."
    return None


def _choose(act: Act, tasks: list[dict[str, Any]], today: date) -> dict[str, Any] | str:
    """The one task meant, or the text to reply instead (none, already, which one?)."""
    words = act.target.words
    if not tasks:
        return f"I couldn't find a task matching “{words}”."
    wanted = _wants_completed(act)
    preferred = [task for task in tasks if bool(task.get("completed")) == wanted]
    if not preferred:
        already = _already(act, tasks[0]) if len(tasks) == 1 else None
        if already:
            return already
        preferred = tasks
    # "buy bread" means the task titled exactly that, even beside "buy bread rolls".
    exact = [t for t in preferred if str(t.get("title", "")).casefold() == words.casefold()]
    if len(exact) == 1:
        return exact[0]
    if len(preferred) == 1:
        return preferred[0]
    example = act.command_for(int(preferred[0].get("id") or 0))
    return (
        f"I found {len(preferred)} tasks matching “{words}”:\n\n"
        f"{task_lines(preferred, len(preferred), today)}\n\n"
        f"Which one? Say it with the number, e.g. “{example}”."
    )


def _resolve(act: Act, lookup: ToolResult, tools: frozenset[str], today: date) -> Plan:
    output = as_dict(lookup.output)
    if output is None or not output.get("ok"):
        return Plan(text=describe(lookup, today))
    chosen = _choose(act, tasks_of(output), today)
    if isinstance(chosen, str):
        return Plan(text=chosen)
    task_id = chosen.get("id")
    if not isinstance(task_id, int):
        return Plan(text="Sorry, I couldn't tell which task that is.")
    return _call(tools, act.request(task_id))


def _call(tools: frozenset[str], *requests: ToolRequest) -> Plan:
    if any(request.name not in tools for request in requests):
        return Plan(text="I can't reach your tasks right now: the task tools aren't available.")
    return Plan(tool_calls=requests)


def _guessed(result: ToolResult, today: date) -> str:
    """The reply after adding a task nobody said "add" for: how to take it back."""
    text = describe(result, today)
    task = (as_dict(result.output) or {}).get("task")
    if isinstance(task, dict) and task.get("id") is not None:
        text += f" (Not what you meant? Say “delete task {task['id']}”.)"
    return text


def _clear_completed(results: Sequence[ToolResult], tools: frozenset[str], today: date) -> Plan:
    """List the completed tasks, delete each, then say how many went."""
    if not results:
        return _call(tools, ToolRequest("list_tasks", {"status": "completed"}))
    lookup = results[0]
    output = as_dict(lookup.output)
    if lookup.name != "list_tasks" or output is None or not output.get("ok"):
        return Plan(text=describe(results[-1], today))
    if len(results) > 1:
        count = output.get("count")
        return Plan(text=cleared_reply(count if isinstance(count, int) else 0, results[1:]))
    ids = [t["id"] for t in tasks_of(output) if t.get("completed") and isinstance(t.get("id"), int)]
    if not ids:
        return Plan(text="You have no completed tasks to clear.")
    return _call(tools, *(ToolRequest("delete_task", {"task_id": i}) for i in ids))


def _plan(conversation: Conversation, today: date) -> Plan:
    intent = parse(conversation.user_text, today)
    if isinstance(intent, Reply):
        return Plan(text=intent.text)
    tools, results = conversation.tool_names, conversation.tool_results
    if isinstance(intent, ClearCompleted):
        return _clear_completed(results, tools, today)
    if isinstance(intent, Guess):
        return Plan(text=_guessed(results[-1], today)) if results else _call(tools, intent.request)
    if not results:
        if isinstance(intent, ToolRequest):
            return _call(tools, intent)
        if intent.target.task_id is not None:
            return _call(tools, intent.request(intent.target.task_id))
        return _call(tools, ToolRequest("list_tasks", {"search": intent.target.words}))
    last = results[-1]
    # One lookup so far: pick the task and act. Anything more ends the turn, so a
    # confused conversation can never loop.
    looked_up = len(results) == 1 and last.name == "list_tasks"
    if isinstance(intent, Act) and intent.target.task_id is None and looked_up:
        return _resolve(intent, last, tools, today)
    return Plan(text=describe(last, today))


def make_todo_planner(today: Callable[[], date]) -> Planner:
    """The offline todo assistant; `today` anchors "tomorrow", "friday" and friends."""

    def plan(conversation: Conversation) -> Plan:
        return _plan(conversation, today())

    return plan


todo_planner = make_todo_planner(date.today)
