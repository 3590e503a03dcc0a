"""The tasks contract: what callers send (create, update, query) and what they get back."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from ..db import MAX_SQL_INT
from ..text_rules import Title, check_free_text, check_name
from ..timestamps import UtcDatetime

Priority = Literal["low", "medium", "high"]
SortField = Literal["created_at", "due_date", "priority", "title", "updated_at"]
Order = Literal["asc", "desc"]

MAX_PAGE_SIZE = 100


def _dedupe(tags: list[str]) -> list[str]:
    """Drop repeats ignoring case; the first spelling wins, order is kept."""
    seen: set[str] = set()
    unique = []
    for tag in tags:
        key = tag.casefold()
        if key not in seen:
            seen.add(key)
            unique.append(tag)
    return unique


Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=1000), AfterValidator(check_free_text)
]
# A name (text_rules.py): stored tags are also "\n"-delimited for filtering.
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=30),
    AfterValidator(check_name),
]
Tags = Annotated[list[Tag], Field(max_length=20), AfterValidator(_dedupe)]


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description = ""
    priority: Priority = "medium"
    due_date: date | None = None
    tags: Tags = Field(default_factory=list)


class TaskUpdate(BaseModel):
    """PATCH: only the fields sent change; `"due_date": null` clears the due date."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    completed: bool | None = None
    priority: Priority | None = None
    due_date: date | None = None
    tags: Tags | None = None

    @field_validator("title", "description", "completed", "priority", "tags")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Validators skip defaults, so this only sees an explicit null.
        if value is None:
            raise ValueError("may be left out, but not set to null")
        return value


class TaskQuery(BaseModel):
    """Filters, sort and page of a task listing; unset filters match everything."""

    completed: bool | None = None
    priority: Priority | None = None
    tag: Tag | None = None
    search: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, max_length=200),
            AfterValidator(check_name),
        ]
        | None
    ) = Field(None, description="Case-insensitive substring of the title or the description.")
    due_before: date | None = Field(None, description="Due on or before this date.")
    due_after: date | None = Field(None, description="Due on or after this date.")
    overdue: bool | None = Field(None, description="Due before today and not completed.")
    sort: SortField = "created_at"
    order: Order | None = Field(
        None,
        description="Default: newest first for timestamps, soonest due, high priority "
        "first, titles A-Z.",
    )
    limit: int = Field(50, ge=1, le=MAX_PAGE_SIZE)
    offset: int = Field(0, ge=0, le=MAX_SQL_INT)


class Task(BaseModel):
    id: int
    title: str
    description: str
    completed: bool
    priority: Priority
    due_date: date | None
    tags: list[str]
    # Instants, written with their UTC offset; due_date is a calendar date and stays one.
    created_at: UtcDatetime
    updated_at: UtcDatetime
    completed_at: UtcDatetime | None


class TaskPage(BaseModel):
    items: list[Task]
    total: int
    limit: int
    offset: int


class PriorityCounts(BaseModel):
    low: int
    medium: int
    high: int


class TaskStats(BaseModel):
    """Counts over the user's tasks; every count but total and completed is of open tasks."""

    total: int
    completed: int
    pending: int
    overdue: int
    due_today: int
    by_priority: PriorityCounts
