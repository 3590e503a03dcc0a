"""The per-request context every store call, tool and service receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import uuid4

from .runs.lease import Lease


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking. Every row read or written is scoped to `user_id`."""

    user_id: str
    request_id: str = field(default_factory=lambda: uuid4().hex)
    # The id a thread created by this request gets, chosen up front so the run can be
    # registered, and the id sent to the client, before the stream starts.
    new_thread_id: str | None = None
    # The run lock this request holds (set at admission): the run's usage row is written
    # with its release, in one transaction.
    run: Lease | None = None
    # The caller's bearer token, for MCP servers configured to act as the user
    # (forward_user_token). A credential: never in a repr, and so never in a log line.
    bearer_token: str | None = field(default=None, repr=False)
    # Where the caller reached this server (scheme://host[:port]/), for the signed
    # attachment URLs it is given (attachments/signing.py).
    base_url: str | None = None
