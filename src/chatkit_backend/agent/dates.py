"""Dates in plain English: read from what the user writes, written in replies and widgets.

Reading: a bare weekday, "on/by/due friday" and "next friday" all mean the first such
day strictly after today; "this friday" / "the coming friday" is today when today is a
Friday. Numeric dates are month first (12/15) unless that cannot be (15/12).
A week runs Monday to Sunday: asking what is due "this week" means today to Sunday,
"next week" the whole week after (a task added "next week" is due in seven days).

Writing: one form everywhere a user reads a due date ("due Fri 4 Dec"), so the chat
text and the task list widget never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

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
      | (?P<num_a>\d{{1,2}})/(?P<num_b>\d{{1,2}})(?:/(?P<num_year>\d{{4}}|\d{{2}}))?
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


def _numeric_date(today: date, first: int, second: int, year: str | None) -> date | None:
    # Month first, as most English date pickers write it, unless it cannot be a month.
    month, day = (second, first) if first > 12 >= second else (first, second)
    if year is None:
        return _month_day(today, month, day)
    try:
        return date(int(year) + (2000 if len(year) == 2 else 0), month, day)
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
    if group("num_a"):
        return _numeric_date(today, int(group("num_a")), int(group("num_b")), group("num_year"))
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
        # Likewise "12/15" alone is a date only at the end: "add 1/2 cup flour" is not.
        numeric = match.group("num_a") and not (match.group("lead") or match.group("num_year"))
        if numeric and match.end() != len(text):
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


def week_end(today: date) -> date:
    """The Sunday that ends today's week (today, on a Sunday)."""
    return today + timedelta(days=6 - today.weekday())


def next_week(today: date) -> tuple[date, date]:
    """Monday to Sunday of the week after this one."""
    monday = week_end(today) + timedelta(days=1)
    return monday, monday + timedelta(days=6)


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_SHORT = tuple(name[:3].title() for name in _MONTH_NAMES)


def day_text(value: date, today: date) -> str:
    """The day as "Fri 4 Dec", with the year when it is not this year's ("Mon 4 Jan 2027")."""
    text = f"{_DAY_NAMES[value.weekday()]} {value.day} {_MONTH_SHORT[value.month - 1]}"
    return text if value.year == today.year else f"{text} {value.year}"


def is_overdue(due: date, today: date, *, completed: bool) -> bool:
    return not completed and due < today


def due_text(due: date, today: date, *, completed: bool = False) -> str:
    """How a due date reads: "due today", "due tomorrow", "due Fri 4 Dec", "was due Mon 16 Nov".

    The last form is for a pending task whose day has passed.
    """
    if is_overdue(due, today, completed=completed):
        return f"was due {day_text(due, today)}"
    if due == today:
        return "due today"
    if due == today + timedelta(days=1):
        return "due tomorrow"
    return f"due {day_text(due, today)}"
