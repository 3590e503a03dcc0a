"""SQL tables behind the ChatKit store: threads, items, attachments and feedback.

Each row keeps the whole pydantic model as JSON text (`data`) beside the columns
that queries filter and sort on, so SDK item types can evolve without migrations.
`seq` is a database-assigned tie-breaker: SDK timestamps share ticks, and pages
ordered by `created_at` alone would skip or repeat items.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import AutoId, Base


class ThreadRow(Base):
    __tablename__ = "threads"

    seq: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    data: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ix_threads_user_created", "user_id", "created_at", "seq"),
        # The thread history and REST /api/conversations: last activity first, by user.
        Index("ix_threads_user_activity", "user_id", "updated_at", "seq"),
    )


class ItemRow(Base):
    __tablename__ = "thread_items"

    seq: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    thread_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    data: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_items_thread_created", "thread_id", "created_at", "seq"),)


# An attachment record's states (AttachmentRow.state; attachments/records.py moves them).
PENDING, UPLOADING, READY, DELETING = "pending", "uploading", "ready", "deleting"


class AttachmentRow(Base):
    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255))
    thread_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    data: Mapped[str] = mapped_column(Text)
    # pending | uploading | ready | deleting (attachments/records.py): each change is one
    # compare-and-set UPDATE, so racing uploads, uses and deletes have one winner.
    state: Mapped[str] = mapped_column(String(16), server_default=READY)
    # What the model reads of a PDF, extracted once (attachments/extraction.py).
    extracted_text: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_attachments_user", "user_id"),)


class FeedbackRow(Base):
    __tablename__ = "item_feedback"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)
