"""Tables shared by every worker and instance: active runs, rate windows, idempotency, usage.

Nothing about a run lives only in process memory, so N identical instances on one
database behave like one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from ..db import AutoId, Base


class ActiveRunRow(Base):
    """A thread's active run. The primary key is the per-thread run lock."""

    __tablename__ = "active_runs"

    thread_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    instance: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    # Refreshed by the owning process; a stale row is a crashed worker's and is ignored.
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class RateWindowRow(Base):
    """Messages a user sent in one fixed one-minute window."""

    __tablename__ = "rate_windows"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class IdempotencyKeyRow(Base):
    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class UsageRow(Base):
    """Tokens, model and duration of one run."""

    __tablename__ = "usage"

    seq: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(255))
    thread_id: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(255))
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_usage_user_created", "user_id", "created_at"),)
