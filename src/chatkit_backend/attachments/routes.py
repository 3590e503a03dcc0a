"""HTTP endpoints for attachment bytes.

- `POST|PUT /attachments/{id}/upload?expires=&signature=`: the two-phase upload, at the
  signed URL `attachments.create` returned (no bearer: the ChatKit frontend sends none).
- `POST /attachments`: the direct upload (bearer auth, multipart `file`), answering the
  attachment JSON ChatKit expects; give this URL to `uploadStrategy: {type: "direct"}`.
- `GET /attachments/{id}/content?expires=&signature=`: the bytes, for `<img>` previews.

A bad or expired signature, and another user's id, answer exactly like a missing one.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from chatkit.types import Attachment
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import TypeAdapter

from ..auth import current_context
from ..context import RequestContext
from ..errors import BadRequest, Conflict, UnprocessableContent
from ..text_rules import Name
from .receive import receive_upload
from .rules import base_type, is_image
from .service import Attachments, is_uploaded, size_of

router = APIRouter(tags=["attachments"])

_adapter: TypeAdapter[Attachment] = TypeAdapter(Attachment)

OCTET_STREAM = "application/octet-stream"

# Room for a multipart envelope around the file (boundaries, part headers).
MULTIPART_SLACK = 64 * 1024


def get_attachments(request: Request) -> Attachments:
    attachments: Attachments | None = getattr(request.app.state, "attachments", None)
    if attachments is None:
        raise BadRequest("Attachments are not enabled on this server.", code="not_enabled")
    return attachments


Service = Annotated[Attachments, Depends(get_attachments)]
AttachmentId = Annotated[Name, Path(max_length=64)]
Expires = Annotated[int, Query()]
Signature = Annotated[str, Query(max_length=128)]


def _json(attachment: Attachment) -> Response:
    body = attachment.model_dump_json(exclude_none=True, context={"exclude_metadata": True})
    return Response(body, media_type="application/json")


def _early_limit(request: Request, limit: int, attachments: Attachments) -> None:
    """Refuse a body whose Content-Length already says it is too large."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
        raise attachments.rules.too_large()


async def _two_phase(
    request: Request,
    attachment_id: AttachmentId,
    expires: Expires,
    signature: Signature,
    attachments: Service,
) -> Response:
    attachment, owner = await attachments.signed(attachment_id, "upload", expires, signature)
    if is_uploaded(attachment):
        raise Conflict(f"Attachment {attachment_id} is already uploaded.", code="already_uploaded")
    declared = size_of(attachment)
    rules = attachments.rules
    # Cut off at whichever comes first: the declared size (a mismatch) or the limit.
    limit = min(rules.max_bytes, declared if declared is not None else rules.max_bytes)
    _early_limit(request, limit, attachments)
    over = (
        rules.too_large()
        if limit == rules.max_bytes
        else UnprocessableContent(
            f"The upload has more than the {limit} bytes declared.",
            code="attachment_size_mismatch",
        )
    )
    kind = attachment.mime_type
    received = await receive_upload(
        request, limit, over, sniff=lambda head, _: rules.check_signature(head, kind)
    )
    done = await attachments.store_upload(attachment, bytes(received.data), owner)
    shown = RequestContext(owner.user_id, base_url=str(request.base_url))
    return _json(attachments.fresh(done, shown))


for _method in ("POST", "PUT"):
    router.add_api_route(
        "/attachments/{attachment_id}/upload",
        _two_phase,
        methods=[_method],
        operation_id=f"upload_attachment_{_method.lower()}",
        summary="Two-phase upload of an attachment's bytes (signed URL)",
    )


@router.post("/attachments")
async def direct_upload(
    request: Request,
    attachments: Service,
    ctx: Annotated[RequestContext, Depends(current_context)],
) -> Response:
    rules = attachments.rules
    _early_limit(request, rules.max_bytes, attachments)

    def check_file(filename: str | None, mime_type: str | None) -> None:
        # The part's name and declared type are refused before a byte of it is read.
        if filename is None:
            raise BadRequest(
                'Send the file as a multipart "file" part with a filename.', code="invalid_upload"
            )
        rules.check_declared(filename, None, mime_type or OCTET_STREAM)

    def sniff(head: bytes, mime_type: str | None) -> None:
        rules.check_signature(head, mime_type or OCTET_STREAM)

    received = await receive_upload(
        request, rules.max_bytes, rules.too_large(), check_file=check_file, sniff=sniff
    )
    if received.filename is None:  # (a body that is not multipart)
        raise BadRequest(
            'Send the file as a multipart "file" part with a filename.', code="invalid_upload"
        )
    attachment = await attachments.create_uploaded(
        received.filename,
        received.mime_type or OCTET_STREAM,
        bytes(received.data),
        ctx,
    )
    return _json(attachment)


@router.get("/attachments/{attachment_id}/content")
async def content(
    attachment_id: AttachmentId,
    expires: Expires,
    signature: Signature,
    attachments: Service,
) -> Response:
    attachment, _ = await attachments.signed(attachment_id, "content", expires, signature)
    data = await attachments.content(attachment)
    kind = base_type(attachment.mime_type)
    disposition = "inline" if is_image(kind) else "attachment"
    return Response(
        data,
        media_type=kind,
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(attachment.name)}",
            # Served as what it was declared, never sniffed into HTML or script.
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=600",
        },
    )
