"""Reading an upload's bytes off the wire, refused the moment it passes its limit.

Two shapes arrive: the raw bytes as the body, or a multipart form whose `file` part
holds them (what the ChatKit frontend and a browser `FormData` send). Multipart is
parsed as it streams (python-multipart's push parser), so an oversized file is cut off
at the limit rather than spooled whole first; the file's declared name and type, and its
first bytes, can be checked as soon as they arrive (routes.py), before the rest is read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from ..errors import ApiError, BadRequest


@dataclass
class Received:
    data: bytearray = field(default_factory=bytearray)
    filename: str | None = None
    mime_type: str | None = None


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: bytearray = field(default_factory=bytearray)
    value: bytearray = field(default_factory=bytearray)
    is_file: bool = False


async def _chunks(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise BadRequest("The upload was interrupted.", code="upload_interrupted") from None


# Bytes enough for every signature rules.py checks (WebP's is at bytes 8 to 12).
SNIFF_BYTES = 16

# Called with the file part's filename and type once its headers are read, before any of
# its bytes: may raise to refuse the upload then.
CheckFile = Callable[[str | None, str | None], None]
# Called once with the file's first SNIFF_BYTES (or all of a shorter file) and its type.
Sniff = Callable[[bytes, str | None], None]


class _Sniffer:
    def __init__(self, sniff: Sniff | None) -> None:
        self.sniff = sniff

    def fed(self, found: Received, ended: bool = False) -> None:
        if self.sniff is not None and (ended or len(found.data) >= SNIFF_BYTES):
            sniff, self.sniff = self.sniff, None
            sniff(bytes(found.data[:SNIFF_BYTES]), found.mime_type)


async def receive_upload(
    request: Request,
    limit: int,
    too_large: ApiError,
    *,
    check_file: CheckFile | None = None,
    sniff: Sniff | None = None,
) -> Received:
    """The uploaded file; raises `too_large` as soon as it passes `limit` bytes, and
    whatever `check_file` and `sniff` raise as soon as what they look at has arrived."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    sniffer = _Sniffer(sniff)
    if content_type != b"multipart/form-data":
        raw = Received(mime_type=content_type.decode("latin-1") or None)
        async for chunk in _chunks(request):
            raw.data += chunk
            sniffer.fed(raw)  # (first: a wrong type is the answer, even past the limit)
            if len(raw.data) > limit:
                raise too_large
        sniffer.fed(raw, ended=True)
        return raw

    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("The multipart upload has no boundary.", code="invalid_upload")
    found = Received()
    files = 0
    ended = False
    part = _Part()

    def on_part_begin() -> None:
        nonlocal part
        part = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part.name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part.value += data[start:end]

    def on_header_end() -> None:
        part.headers[part.name.decode("latin-1").lower()] = part.value.decode("utf-8", "replace")
        part.name, part.value = bytearray(), bytearray()

    def on_headers_finished() -> None:
        nonlocal files
        _, disposition = parse_options_header(part.headers.get("content-disposition", ""))
        part.is_file = disposition.get(b"name") == b"file"
        if part.is_file:
            files += 1
            if files > 1:
                raise BadRequest("Upload one file at a time.", code="invalid_upload")
            filename = disposition.get(b"filename")
            found.filename = filename.decode("utf-8", "replace") if filename else None
            found.mime_type = part.headers.get("content-type")
            if check_file is not None:
                check_file(found.filename, found.mime_type)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.is_file:
            found.data += data[start:end]
            sniffer.fed(found)
            if len(found.data) > limit:
                raise too_large

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_end": on_end,
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        async for chunk in _chunks(request):
            parser.write(chunk)
        parser.finalize()
    except ApiError:
        raise
    except Exception:  # the parser's own errors: a malformed body
        raise BadRequest("The multipart upload is malformed.", code="invalid_upload") from None
    if files == 0:
        raise BadRequest('The multipart upload has no "file" part.', code="invalid_upload")
    if not ended:
        # The parser's finalize() accepts a body cut before its closing boundary (a proxy
        # or client that gave up): that file is incomplete, never stored as if whole.
        raise BadRequest("The multipart upload ended early.", code="upload_interrupted")
    sniffer.fed(found, ended=True)
    return found
