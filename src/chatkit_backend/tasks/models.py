"""The `tasks` table: one row per todo item, always owned by one user.

Besides what the API shows, a row keeps casefolded copies of its title,
description and tags (`*_key`). Matching "case-insensitively" on those copies is
Unicode-correct and identical on both databases, whereas SQLite's lower() and
LIKE only fold ASCII ("Über" would never match "über" on the default database).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import AutoId, Base


class TaskRow(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[str] = mapped_column(String(8), default="medium")
    due_date: Mapped[date | None] = mapped_column(Date)
    # A JSON array as text: portable, and nothing queries inside it (see tag_keys).
    tags: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)

    title_key: Mapped[str] = mapped_column(Text)
    description_key: Mapped[str] = mapped_column(Text, default="")
    # "\n"-delimited casefolded tags ("\nwork\nhome\n"): a tag filter is then one LIKE.
    tag_keys: Mapped[str] = mapped_column(Text, default="\n")

    __table_args__ = (
        Index("ix_tasks_user_created", "user_id", "created_at"),
        Index("ix_tasks_user_due", "user_id", "due_date"),
        # Task numbers are what users say ("delete task 8") and what chat history shows,
        # so one must never name two tasks. SQLite hands out the highest deleted rowid
        # again unless the key is AUTOINCREMENT; PostgreSQL's sequence never does.
        {"sqlite_autoincrement": True},
    )
