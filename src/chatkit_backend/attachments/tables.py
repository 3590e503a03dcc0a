"""The bytes of attachments kept in the database (the default ATTACHMENTS_URL).

Separate from `attachments` (the metadata, chat/tables.py) so listing or loading
metadata never drags the bytes along.
"""

from __future__ import annotations

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base


class AttachmentBlobRow(Base):
    __tablename__ = "attachment_blobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
