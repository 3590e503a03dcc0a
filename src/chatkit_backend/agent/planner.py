"""What the offline model says: the todo assistant's plain-English understanding.

The newest user message becomes one intent: a reply (help, a question back), a
tool call (add, list) or an action on one task (complete, delete, update). An
action that names its task by title words first calls `list_tasks(search=...)`;
the Agents SDK then calls the planner again with that result, and the planner
picks the task (or asks which one). After the last tool result it describes what
happened from the tool's own output, so it never invents ids.

Date rule: a bare weekday, "on/by/due friday" and "next friday" all mean the first
such day strictly after today; "this friday" / "the coming friday" is today when
today is a Friday.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from .offline import Conversation, Plan, Planner, ToolRequest, ToolResult

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
    "- “mark buy bread as done”\n"
    "- “make task 2 high priority”\n\n"
    "I can also rename, reschedule (“move task 2 to friday”), reopen and delete tasks."
)
GREETING = "Hi! 👋 I'm your todo assistant."
NOT_UNDERSTOOD = "Sorry, I didn't understand that."
THANKS_REPLY = "Glad to help! Anything else?"
EXAMPLE_ADD = "“add a task to buy bread tomorrow”"

# Lists in replies stay short: the chat UI shows the full list in a widget.
MAX_LISTED = 10
MAX_ERROR_CHARS = 200


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


Intent = Reply | ToolRequest | Act


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


# --- Dates ---------------------------------------------------------------------------

_WEEKDAYS = {
    name: index
    for index, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}
# Short forms are dates only after "on", "by", "this"...: "a sun hat" is not a Sunday.
_WEEKDAY_ABBREVIATIONS = {
    "mon": 0,
    "tue": 1,
    "tues": 1,
    "wed": 2,
    "thu": 3,
    "thur": 3,
    "thurs": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}
_MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MONTHS = {
    **{name: number for number, name in enumerate(_MONTH_NAMES, start=1)},
    **{name[:3]: number for number, name in enumerate(_MONTH_NAMES, start=1)},
    "sept": 9,
}
_COUNTS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}


def _alternatives(words: Sequence[str]) -> str:
    # Longest first, so "thurs" wins over "thu".
    return "|".join(sorted(words, key=len, reverse=True))


_WEEKDAY_ALT = _alternatives([*_WEEKDAYS, *_WEEKDAY_ABBREVIATIONS])
_MONTH_ALT = _alternatives(list(_MONTHS))
_DATE_RE = re.compile(
    rf"""
    (?<![\w'-])
    (?P<lead>(?:(?:due|by|on|for|before|until|till)\s+){{1,2}})?
    (?:
        (?P<iso>\d{{4}})-(?P<iso_month>\d{{1,2}})-(?P<iso_day>\d{{1,2}})
      | (?P<today>today|tonight|this\s+(?:morning|afternoon|evening)|end\s+of\s+(?:the\s+)?day)
      | (?P<overmorrow>(?:the\s+)?day\s+after\s+tomorrow)
      | (?P<tomorrow>tomorrow|tmrw|tmr)
      | in\s+(?P<count>\d{{1,3}}|{_alternatives(list(_COUNTS))})\s+(?P<unit>days?|weeks?)
      | (?P<next_week>next\s+week)
      | (?:(?P<rel>this|next|coming|the\s+coming)\s+)?(?P<weekday>{_WEEKDAY_ALT})
      | (?P<month>{_MONTH_ALT})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?
      | (?:the\s+)?(?P<day2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<month2>{_MONTH_ALT})
    )
    (?![\w'-])
    """,
    re.I | re.X,
)


@dataclass(frozen=True)
class DateMatch:
    """A date phrase found in a message; `value` is None for impossible dates (Feb 30).

    `start`/`end` include a leading "due"/"by"/"on" (cut out of titles with the date);
    `text` does not (quoted back when the date cannot be read).
    """

    value: date | None
    start: int
    end: int
    text: str


def _weekday_after(today: date, weekday: int, *, today_counts: bool) -> date:
    days = (weekday - today.weekday()) % 7
    if days == 0 and not today_counts:
        days = 7
    return today + timedelta(days=days)


def _month_day(today: date, month: int, day: int) -> date | None:
    """The next such day from today on: "Jan 5" said in November is next year's."""
    try:
        found = date(today.year, month, day)
        return found if found >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


def _resolve_date(match: re.Match[str], today: date) -> date | None:
    group = match.group
    if group("iso"):
        try:
            return date(int(group("iso")), int(group("iso_month")), int(group("iso_day")))
        except ValueError:
            return None
    if group("today"):
        return today
    if group("overmorrow"):
        return today + timedelta(days=2)
    if group("tomorrow"):
        return today + timedelta(days=1)
    if group("count"):
        count = group("count").lower()
        number = int(count) if count.isdigit() else _COUNTS[count]
        per_unit = 7 if group("unit").lower().startswith("week") else 1
        return today + timedelta(days=number * per_unit)
    if group("next_week"):
        return today + timedelta(days=7)
    if group("weekday"):
        name = group("weekday").lower()
        weekday = _WEEKDAYS.get(name, _WEEKDAY_ABBREVIATIONS.get(name, 0))
        rel = " ".join((group("rel") or "").lower().split())
        return _weekday_after(today, weekday, today_counts=rel in ("this", "coming", "the coming"))
    if group("month"):
        return _month_day(today, _MONTHS[group("month").lower()], int(group("day")))
    return _month_day(today, _MONTHS[group("month2").lower()], int(group("day2")))


def find_date(text: str, today: date) -> DateMatch | None:
    """The first date phrase in `text` that clearly means a date."""
    for match in _DATE_RE.finditer(text):
        weekday = (match.group("weekday") or "").lower()
        bare = bool(weekday) and not (match.group("lead") or match.group("rel"))
        # A bare weekday counts only as a full name at the end ("call mom friday"),
        # so titles like "read Friday Black" or "buy a sun hat" keep their words.
        if bare and (weekday not in _WEEKDAYS or match.end() != len(text)):
            continue
        phrase = match.group()[len(match.group("lead") or "") :]
        return DateMatch(_resolve_date(match, today), match.start(), match.end(), phrase)
    return None


def parse_date(text: str, today: date) -> DateMatch | None:
    """`text` as a whole read as a date ("friday", "in 3 days", "2026-12-01")."""
    text = text.strip()
    match = _DATE_RE.fullmatch(text)
    if match is None:
        return None
    return DateMatch(_resolve_date(match, today), 0, len(text), text)


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
    r"do\s+i\s+have|have\s+i|any)\b",
    re.I,
)
_BARE_LIST_RE = re.compile(
    rf"^(?:(?:all|my|the|every)\s+)*(?:[\w-]+\s+){{0,2}}{_TASKS_NOUN}$", re.I
)
_PENDING_RE = re.compile(
    r"\b(?:pending|open|remaining|outstanding|incomplete|unfinished|undone|uncompleted|active|"
    r"left|still|not\s+(?:yet\s+)?(?:done|completed?|finished))\b",
    re.I,
)
_COMPLETED_RE = re.compile(
    r"\b(?:completed|complete|done|finished|closed|checked\s+off|ticked\s+off)\b", re.I
)
_LIST_NOUN_RE = re.compile(rf"\b{_TASKS_NOUN}\b|\bto\s+do\b", re.I)
_LIST_PRIORITY_RE = re.compile(
    r"\b(?P<level>high|top|medium|normal|low)[\s-]*priority\b|\b(?P<word>urgent|important)\b",
    re.I,
)
_LIST_SEARCH_RE = re.compile(
    r"\b(?:about|matching|containing|mentioning|called|named|like)\s+(?P<search>.+)$", re.I
)


def _list(text: str, today: date) -> Intent | None:
    about_tasks = _LIST_NOUN_RE.search(text) or _PENDING_RE.search(text)
    asks = _LIST_START_RE.match(text) and (about_tasks or _COMPLETED_RE.search(text))
    if not (asks or _BARE_LIST_RE.match(text)):
        return None
    arguments: dict[str, Any] = {"status": "all"}
    # "not done" holds "done": the pending words are checked first.
    if _PENDING_RE.search(text):
        arguments["status"] = "pending"
    elif _COMPLETED_RE.search(text):
        arguments["status"] = "completed"
    priority = _LIST_PRIORITY_RE.search(text)
    if priority:
        arguments["priority"] = _LEVELS[(priority.group("level") or priority.group("word")).lower()]
    search = _LIST_SEARCH_RE.search(text)
    if search:
        arguments["search"] = _unquote(search.group("search"))
    return ToolRequest("list_tasks", arguments)


# Order matters. Adding comes first because a new task's title may say anything
# ("add a task to delete old mail"); reopening before completing because "mark X as
# not done" ends in "done"; the specific update forms before the generic "change X to Y".
INTENTS: tuple[tuple[str, Handler], ...] = (
    ("help", _help),
    ("add", _add),
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
    return Reply(f"{NOT_UNDERSTOOD} {HELP}\n\n{OFFLINE_NOTE}")


# --- Replies from tool output ------------------------------------------------------

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_SHORT = tuple(name[:3].title() for name in _MONTH_NAMES)


def _day(value: date, today: date) -> str:
    text = f"{_DAY_NAMES[value.weekday()]} {value.day} {_MONTH_SHORT[value.month - 1]}"
    return text if value.year == today.year else f"{text} {value.year}"


def _due_phrase(value: date, today: date) -> str:
    if value == today:
        return "due today"
    if value == today + timedelta(days=1):
        return "due tomorrow"
    return f"due {_day(value, today)}"


def _as_dict(output: Any) -> dict[str, Any] | None:
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


def _task_due(task: dict[str, Any]) -> date | None:
    raw = task.get("due_date")
    if not isinstance(raw, str):
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


def _title(task: dict[str, Any]) -> str:
    return _md(str(task.get("title") or "(untitled)"))


def _task_line(task: dict[str, Any], today: date) -> str:
    details = []
    due = _task_due(task)
    if due is not None:
        overdue = due < today and not task.get("completed")
        details.append(f"was due {_day(due, today)}" if overdue else _due_phrase(due, today))
    if task.get("priority") in ("high", "low"):
        details.append(f"{task['priority']} priority")
    line = f"- #{task.get('id')} {_title(task)}"
    if details:
        line += f" ({', '.join(details)})"
    return line + (" ✓" if task.get("completed") else "")


def _task_lines(tasks: Sequence[dict[str, Any]], total: int, today: date) -> str:
    lines = [_task_line(task, today) for task in tasks[:MAX_LISTED]]
    if total > len(lines):
        lines.append(f"- …and {total - len(lines)} more")
    return "\n".join(lines)


def _tasks_of(output: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = output.get("tasks")
    return [task for task in tasks if isinstance(task, dict)] if isinstance(tasks, list) else []


def _list_reply(arguments: dict[str, Any], output: dict[str, Any], today: date) -> str:
    tasks = _tasks_of(output)
    count = output.get("count")
    total = count if isinstance(count, int) else len(tasks)
    status = arguments.get("status") or "all"
    priority, search = arguments.get("priority"), arguments.get("search")
    words = (f"{priority}-priority" if priority else "", "" if status == "all" else status)
    kind = "".join(f"{word} " for word in words if word)  # "high-priority pending "
    matching = f" matching “{search}”" if search else ""
    if total == 0:
        if not (kind or search):
            return f"Your list is empty. Add something with {EXAMPLE_ADD}."
        if kind == "pending " and not search:
            return "You have no pending tasks. 🎉"
        return f"You have no {kind}tasks{matching}."
    noun = "task" if total == 1 else "tasks"
    header = f"You have {total} {kind}{noun}{matching}"
    done = sum(1 for task in tasks if task.get("completed"))
    if status == "all" and done and len(tasks) == total:
        header += f" ({done} done)"
    return f"{header}:\n\n{_task_lines(tasks, total, today)}"


def _add_reply(task: dict[str, Any], today: date) -> str:
    details = []
    due = _task_due(task)
    if due is not None:
        details.append(_due_phrase(due, today))
    if task.get("priority"):
        details.append(f"{task['priority']} priority")
    tags = task.get("tags")
    if isinstance(tags, list) and tags:
        details.append(" ".join(f"#{tag}" for tag in tags))
    text = f"Added **{_title(task)}**"
    if details:
        text += f" ({', '.join(details)})"
    if task.get("id") is not None:
        text += f" as task #{task['id']}"
    return text + "."


def _update_reply(arguments: dict[str, Any], task: dict[str, Any], today: date) -> str:
    name = f"**{_title(task)}** (#{task.get('id')})"
    if "title" in arguments:
        return f"Renamed task #{task.get('id')} to **{_title(task)}**."
    if "priority" in arguments:
        return f"{name} is now {task.get('priority')} priority."
    if "due_date" in arguments:
        due = _task_due(task)
        return f"{name} is now {_due_phrase(due, today)}." if due else f"{name} has no due date."
    if arguments.get("completed") is False:
        return f"Reopened {name}."
    if arguments.get("completed") is True:
        return f"Marked **{_title(task)}** as done. ✓"
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
    """The reply after a tool call, from what the tool returned (never made up)."""
    output = _as_dict(result.output)
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
        return f"Marked **{_title(task)}** as done. ✓"
    if result.name == "delete_task":
        return f"Deleted task #{task.get('id')} **{_title(task)}**."
    if result.name == "update_task":
        return _update_reply(result.arguments, task, today)
    return "Done."


# --- Picking the task named by title words ----------------------------------------


def _wants_completed(act: Act) -> bool:
    """Reopening looks among done tasks; everything else prefers pending ones."""
    return act.tool == "update_task" and act.changes.get("completed") is False


def _already(act: Act, task: dict[str, Any]) -> str | None:
    """A reply when the only match is already in the state the user asks for."""
    if act.tool == "complete_task":
        return f"**{_title(task)}** (#{task.get('id')}) is already done. ✓"
    if _wants_completed(act):
        return f"**{_title(task)}** (#{task.get('id')}) isn't done, so there's nothing to reopen."
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
        f"{_task_lines(preferred, len(preferred), today)}\n\n"
        f"Which one? Say it with the number, e.g. “{example}”."
    )


def _resolve(act: Act, lookup: ToolResult, tools: frozenset[str], today: date) -> Plan:
    output = _as_dict(lookup.output)
    if output is None or not output.get("ok"):
        return Plan(text=describe(lookup, today))
    chosen = _choose(act, _tasks_of(output), today)
    if isinstance(chosen, str):
        return Plan(text=chosen)
    task_id = chosen.get("id")
    if not isinstance(task_id, int):
        return Plan(text="Sorry, I couldn't tell which task that is.")
    return _call(act.request(task_id), tools)


def _call(request: ToolRequest, tools: frozenset[str]) -> Plan:
    if request.name not in tools:
        return Plan(text="I can't reach your tasks right now: the task tools aren't available.")
    return Plan(tool_calls=(request,))


def _plan(conversation: Conversation, today: date) -> Plan:
    intent = parse(conversation.user_text, today)
    if isinstance(intent, Reply):
        return Plan(text=intent.text)
    tools, results = conversation.tool_names, conversation.tool_results
    if not results:
        if isinstance(intent, ToolRequest):
            return _call(intent, tools)
        if intent.target.task_id is not None:
            return _call(intent.request(intent.target.task_id), tools)
        return _call(ToolRequest("list_tasks", {"search": intent.target.words}), tools)
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
