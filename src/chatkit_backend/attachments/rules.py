"""What may be uploaded: allowed types, size limits, and bytes that match their type.

Every refusal is an ApiError with its own code, raised before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadRequest, PayloadTooLarge, UnprocessableContent, UnsupportedMediaType
from ..text_rules import name_problem

DEFAULT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
)

# Leading bytes of the binary types whose signature is certain; a declared type whose
# bytes start otherwise is refused (an image/png that is not a PNG never reaches a model).
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
    # Office Open XML files are zip archives.
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (b"PK\x03\x04",),
}

MAX_NAME_CHARS = 255


def base_type(mime_type: str) -> str:
    """`text/plain; charset=utf-8` -> `text/plain`."""
    return mime_type.split(";", 1)[0].strip().lower()


def is_image(mime_type: str) -> bool:
    return base_type(mime_type).startswith("image/")


def is_pdf(mime_type: str) -> bool:
    return base_type(mime_type) == "application/pdf"


def is_text(mime_type: str) -> bool:
    kind = base_type(mime_type)
    return kind.startswith("text/") or kind in {"application/json"}


@dataclass(frozen=True)
class UploadRules:
    max_bytes: int
    types: frozenset[str]
    max_per_message: int

    def check_declared(self, name: str, size: int | None, mime_type: str) -> None:
        """Refuse a name, size or type that cannot be accepted, before any byte is read."""
        if not name.strip() or len(name) > MAX_NAME_CHARS:
            raise BadRequest(
                f"An attachment needs a name of 1 to {MAX_NAME_CHARS} characters.",
                code="invalid_attachment_name",
            )
        if problem := name_problem(name):
            raise BadRequest(
                f"Invalid attachment name: it {problem}.", code="invalid_attachment_name"
            )
        if base_type(mime_type) not in self.types:
            raise UnsupportedMediaType(
                f"Files of type {base_type(mime_type) or '(none)'} are not accepted. "
                f"Accepted: {', '.join(sorted(self.types))}.",
                code="attachment_type_not_allowed",
            )
        if size is not None:
            if size < 0:
                raise BadRequest("An attachment size cannot be negative.", code="invalid_size")
            if size > self.max_bytes:
                raise self.too_large()

    def too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"Attachments are limited to {self.max_bytes} bytes.", code="attachment_too_large"
        )

    def check_signature(self, head: bytes, mime_type: str) -> None:
        """Refuse a file whose first bytes already show it is not its declared type (the
        binary types with a certain signature; anything else passes here)."""
        if not _signature_matches(head, base_type(mime_type)):
            raise _type_mismatch(base_type(mime_type))

    def check_bytes(self, data: bytes, mime_type: str) -> None:
        """Refuse bytes that are not what their declared type says they are."""
        kind = base_type(mime_type)
        if kind == "image/webp" or kind in _SIGNATURES:
            matches = _signature_matches(data, kind)
        elif is_text(kind):
            try:
                data.decode("utf-8")
                matches = True
            except UnicodeDecodeError:
                matches = False
        else:
            matches = True  # legacy Office formats: no signature worth trusting
        if not matches:
            raise _type_mismatch(kind)


def _signature_matches(head: bytes, kind: str) -> bool:
    if kind == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    signatures = _SIGNATURES.get(kind)
    return signatures is None or head.startswith(signatures)


def _type_mismatch(kind: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"The uploaded bytes are not {kind}.", code="attachment_type_mismatch"
    )


def size_mismatch(declared: int, received: int) -> UnprocessableContent:
    return UnprocessableContent(
        f"The upload has {received} bytes where {declared} were declared.",
        code="attachment_size_mismatch",
    )
