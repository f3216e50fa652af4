"""RFC 9457 problem details: every error the API sends is `application/problem+json`.

Handlers raise `Problem` (or an inventory error the middleware maps); nothing else reaches a
client, so no traceback or internal message leaks and every error has the same shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus

from aiohttp import web
from pydantic import BaseModel, Field

from controller.errors import ControllerError
from inventory.errors import DeviceNotFound, InvalidIdentifier

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    """One invalid input: where it is (`query.limit`, `body.role`) and what is wrong."""

    field: str
    message: str


class ProblemDetail(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="one entry per invalid field (validation errors only)"
    )


class Problem(ControllerError):
    """An error answer: raise it from a handler and the client gets it as problem+json."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.type = type_
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})
        super().__init__(detail or self.title)

    def body(self) -> ProblemDetail:
        return ProblemDetail(
            type=self.type,
            title=self.title,
            status=self.status,
            detail=self.detail,
            errors=self.errors,
        )

    def response(self) -> web.Response:
        text = self.body().model_dump_json(exclude_none=True)
        response = web.Response(
            status=self.status, text=text, content_type=PROBLEM_JSON, headers=self.headers
        )
        return response


CLIENT_CLOSED_REQUEST = 499
"""nginx's status for a client that went away before its answer: what metrics count it as."""


def problem_for(exc: BaseException, request: web.Request) -> Problem | None:
    """The problem an expected exception stands for, or None for a bug."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ConnectionResetError) and _client_gone(request):
        # A killed agent mid-upload: not a bug to chase. The answer goes nowhere (aiohttp drops
        # it quietly); the log and the metrics say what happened.
        log.info("client went away during %s %s", request.method, request.path)
        return Problem(
            CLIENT_CLOSED_REQUEST, "the client closed the connection", title="Client Closed Request"
        )
    if isinstance(exc, DeviceNotFound):
        return Problem(404, str(exc))
    if isinstance(exc, InvalidIdentifier):
        return Problem(400, str(exc), errors=[FieldError(field=exc.field, message=exc.reason)])
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return Problem(exc.status, exc.reason, headers=headers)
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error (404 of an unknown path, a bug) into problem+json; a bug is logged
    with its traceback on the server, the client only learns that it happened."""
    try:
        return await handler(request)
    except Exception as exc:
        problem = problem_for(exc, request)
        if problem is None:
            log.exception("internal error on %s %s", request.method, request.path)
            problem = Problem(500, "internal error; the controller's log has the details")
        return problem.response()


def _client_gone(request: web.Request) -> bool:
    """The client closed its connection (a killed agent mid-upload): nothing went wrong here."""
    transport = request.transport
    return transport is None or transport.is_closing()
