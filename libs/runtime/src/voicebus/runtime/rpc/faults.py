"""What can go wrong with a request, each fault with one status everywhere.

An owner's handler raises :class:`NotFound`, :class:`Conflict`, :class:`Invalid` or
:class:`Unavailable`; the responder turns it into the reply's ``RpcError``. A client
raises :class:`RemoteError` (carrying that ``RpcError``) for an ``ok=False`` reply, and
:class:`OwnerUnavailable`, :class:`OwnerTimeout` or :class:`BadReply` when there was no
usable reply at all. Every one has ``status`` and ``code``, so the REST edge maps any
of them to its HTTP answer without knowing which service it asked.
"""

from __future__ import annotations

from voicebus.contracts.rpc import RpcError
from voicebus.runtime.errors import VoicebusError

_MAX_MESSAGE = 1024


class RpcFault(VoicebusError):  # noqa: N818 - faults read as statuses: NotFound, Conflict
    """Root of request/reply faults.

    Attributes:
        status: HTTP-like status (the same for the same fault in every service).
        code: machine-readable code.
        message: what went wrong (no personal data, no secrets).
    """

    status = 500
    default_code = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        self.code = code or self.default_code
        self.message = message[:_MAX_MESSAGE]
        super().__init__(self.message)

    def to_error(self) -> RpcError:
        """The ``RpcError`` a reply carries for this fault."""
        return RpcError(status=self.status, code=self.code, message=self.message)


class BadRequest(RpcFault):
    """400: the body is not JSON of the request's shape at all."""

    status = 400
    default_code = "bad_request"


class Invalid(RpcFault):
    """422: the request names a bad field; the message says which and why."""

    status = 422
    default_code = "invalid_request"


class NotFound(RpcFault):
    """404: no such resource for this tenant (another tenant's is not found either)."""

    status = 404
    default_code = "not_found"


class Conflict(RpcFault):
    """409: the resource's state forbids the change."""

    status = 409
    default_code = "conflict"


class TooMany(RpcFault):
    """429: a limit of the tenant's is reached (its concurrent calls); try later."""

    status = 429
    default_code = "limit_reached"


class Unavailable(RpcFault):
    """503 from the owner: it cannot serve now (its database is down)."""

    status = 503
    default_code = "unavailable"


class OwnerUnavailable(RpcFault):
    """503 at the client: nobody serves the subject (the owner is not running)."""

    status = 503
    default_code = "owner_unavailable"


class OwnerTimeout(RpcFault):
    """503 at the client: the owner did not answer within the budget."""

    status = 503
    default_code = "owner_timeout"


class BadReply(RpcFault):
    """502 at the client: the owner's reply is not the reply type (or has no reason)."""

    status = 502
    default_code = "bad_owner_reply"


class RemoteError(RpcFault):
    """The owner answered ``ok=False``; status, code and message are its own.

    Attributes:
        error: the owner's ``RpcError`` as sent.
    """

    def __init__(self, error: RpcError) -> None:
        self.error = error
        super().__init__(error.message, code=error.code)
        self.status = error.status
