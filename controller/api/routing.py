"""The endpoint registry: one declaration per route gives its role, inputs and output.

    routes = ApiRoutes()

    @routes.endpoint("GET", "/devices", role=Role.VIEWER, query=DeviceQuery,
                     response=DevicePage, summary="List devices")
    async def list_devices(call: Call) -> DevicePage: ...

`ApiRoutes.register` wraps every handler the same way (authentication and role, query and body
validation, the response model, problem+json errors) and `controller.api.openapi` documents the
same declarations, so the OpenAPI document cannot drift from what the routes do.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_args, get_origin

from aiohttp import web
from pydantic import BaseModel, ValidationError

from controller.api.auth import Authenticator, Principal
from controller.api.problems import FieldError, Problem, problem_for
from inventory.token_store import Role

API_BASE = "/api/v1"
M = TypeVar("M", bound=BaseModel)
_PATH_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(slots=True)
class Call:
    """What a handler gets: the request, its caller, and its validated inputs."""

    request: web.Request
    principal: Principal | None
    path: dict[str, str]
    query: BaseModel | None
    body: BaseModel | None

    def query_as(self, model: type[M]) -> M:
        assert isinstance(self.query, model), f"the endpoint declares query={model.__name__}"
        return self.query

    def body_as(self, model: type[M]) -> M:
        assert isinstance(self.body, model), f"the endpoint declares body={model.__name__}"
        return self.body

    @property
    def caller(self) -> Principal:
        """The authenticated caller (every endpoint with a role has one)."""
        assert self.principal is not None, "a public endpoint has no caller"
        return self.principal


Handler = Callable[[Call], Awaitable[BaseModel | web.StreamResponse | None]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route's declaration. `role=None` is public; `responses` documents extra statuses
    a handler may answer (e.g. {404: "no such device"}, {204: "no job"})."""

    method: str
    path: str
    handler: Handler
    role: Role | None
    summary: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    responses: Mapping[int, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    content_type: str | Mapping[str, Mapping[str, Any]] | None = None
    """A body the handler writes itself (e.g. "text/event-stream"), or several, each media type
    with its JSON schema (an export as JSON or CSV)."""
    description: str = ""
    """More than the summary says (the OpenAPI description, after the role it needs)."""

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)


def _scalar_fields(model: type[BaseModel]) -> set[str]:
    """Query fields that take one value (the others are lists: `?site=a&site=b`)."""
    names = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        origin = get_origin(annotation)
        is_list = origin is list or any(get_origin(a) is list for a in get_args(annotation))
        if not is_list:
            names.add(info.alias or name)
    return names


def _field_errors(where: str, exc: ValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"])
        errors.append(
            FieldError(field=f"{where}.{location}" if location else where, message=error["msg"])
        )
    return errors


def _parse_query(model: type[BaseModel], request: web.Request) -> BaseModel:
    scalars = _scalar_fields(model)
    raw: dict[str, Any] = {}
    errors = []
    for key in request.query:
        values = request.query.getall(key)
        if key in scalars:
            if len(values) > 1:
                errors.append(FieldError(field=f"query.{key}", message="given more than once"))
            raw[key] = values[-1]
        else:
            raw[key] = values
    if errors:
        raise Problem(400, "invalid query parameters", errors=errors)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise Problem(400, "invalid query parameters", errors=_field_errors("query", exc)) from None


async def _parse_body(model: type[BaseModel], request: web.Request) -> BaseModel:
    text = await request.text()
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError as exc:
        raise Problem(400, f"the body is not JSON: {exc}") from None
    if data is None:
        raise Problem(
            400, "a JSON body is required", errors=[FieldError(field="body", message="missing")]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Problem(400, "invalid request body", errors=_field_errors("body", exc)) from None


AUTHENTICATOR: web.AppKey[Authenticator] = web.AppKey("authenticator", Authenticator)
LATENCY_HOOK: web.AppKey[Callable[[str, str, int, float], None]] = web.AppKey("latency_hook")
"""Called with (method, route path, status, seconds) after each API request (metrics)."""


def _wrap(
    endpoint: Endpoint, template: str
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500  # a bug: the middleware answers it
        try:
            try:
                response = await _answer(endpoint, request)
            except Exception as exc:
                problem = problem_for(exc, request)
                if problem is None:
                    raise
                response = problem.response()
            status = response.status
            return response
        finally:
            hook = request.app.get(LATENCY_HOOK)
            if hook is not None:
                hook(endpoint.method, template, status, time.perf_counter() - started)

    handle.__name__ = endpoint.operation_id
    return handle


async def _answer(endpoint: Endpoint, request: web.Request) -> web.StreamResponse:
    principal = None
    if endpoint.role is not None:
        principal = await request.app[AUTHENTICATOR].principal(request, endpoint.role)
    query = _parse_query(endpoint.query, request) if endpoint.query else None
    if endpoint.query is None and request.query:
        raise Problem(
            400,
            "this route takes no query parameters",
            errors=[
                FieldError(field=f"query.{k}", message="unknown parameter") for k in request.query
            ],
        )
    body = await _parse_body(endpoint.body, request) if endpoint.body else None
    call = Call(request, principal, dict(request.match_info), query, body)
    result = await endpoint.handler(call)
    if isinstance(result, web.StreamResponse):
        return result
    if result is None:
        return web.Response(status=204)
    if endpoint.response is not None and not isinstance(result, endpoint.response):
        raise TypeError(
            f"{endpoint.operation_id} returned {type(result).__name__}, "
            f"declared {endpoint.response.__name__}"
        )
    return web.Response(
        status=endpoint.status,
        text=result.model_dump_json(by_alias=True),
        content_type="application/json",
    )


class ApiRoutes:
    """A module's endpoints; `app.py` registers each module's `routes`."""

    def __init__(self, *, base: str = API_BASE) -> None:
        self.base = base
        self.endpoints: list[Endpoint] = []

    def endpoint(
        self,
        method: str,
        path: str,
        *,
        role: Role | None,
        summary: str,
        query: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        responses: Mapping[int, str] | None = None,
        tags: tuple[str, ...] = (),
        content_type: str | Mapping[str, Mapping[str, Any]] | None = None,
        description: str = "",
    ) -> Callable[[Handler], Handler]:
        """Declare the decorated handler as `method base+path`."""

        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method.upper(),
                    path,
                    handler,
                    role,
                    summary,
                    query,
                    body,
                    response,
                    status,
                    dict(responses or {}),
                    tags,
                    content_type,
                    description.strip(),
                )
            )
            return handler

        return register

    def full_path(self, endpoint: Endpoint) -> str:
        return f"{self.base}{endpoint.path}"

    def register(self, app: web.Application) -> None:
        for endpoint in self.endpoints:
            path = self.full_path(endpoint)
            app.router.add_route(endpoint.method, path, _wrap(endpoint, path))
