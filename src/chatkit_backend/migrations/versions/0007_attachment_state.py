"""Attachments: a `state` column, so an upload, a first use and a delete are each one
compare-and-set in SQL rather than a read followed by a write.

pending (created, no bytes) -> uploading (one upload holds it) -> ready (bytes stored);
any of them -> deleting (bytes being removed, invisible to users). Existing rows take
their state from the `uploaded` flag in their JSON.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="ready"))
    attachments = sa.table(
        "attachments", sa.column("id", sa.String), sa.column("data", sa.Text), sa.column("state")
    )
    bind = op.get_bind()
    pending = [
        row.id
        for row in bind.execute(sa.select(attachments.c.id, attachments.c.data))
        if not (json.loads(row.data).get("metadata") or {}).get("uploaded")
    ]
    if pending:
        bind.execute(
            attachments.update().where(attachments.c.id.in_(pending)).values(state="pending")
        )


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("state")
