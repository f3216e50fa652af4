"""Unauthenticated operations routes: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from aiohttp import web

from controller.api.models import Status
from controller.api.problems import Problem
from controller.api.routing import ApiRoutes, Call
from controller.api.services import SERVICES
from inventory.database import require_current
from inventory.errors import StoreError

log = logging.getLogger(__name__)
routes = ApiRoutes(base="")


@routes.endpoint(
    "GET", "/healthz", role=None, response=Status, tags=("ops",), summary="The process is up"
)
async def healthz(call: Call) -> Status:
    return Status(status="ok")


@routes.endpoint(
    "GET",
    "/readyz",
    role=None,
    response=Status,
    tags=("ops",),
    responses={503: "the store is unreachable or not at the schema this build needs"},
    summary="The store is reachable and its schema is current",
)
async def readyz(call: Call) -> Status:
    store = call.request.app[SERVICES].store
    try:
        await require_current(store.engine, store.target)
    except StoreError as exc:
        log.warning("not ready: %s", exc)  # the details stay in the log: this route is public
        raise Problem(503, "the store is unreachable or its schema is not current") from None
    return Status(status="ok")


@routes.endpoint(
    "GET",
    "/metrics",
    role=None,
    tags=("ops",),
    content_type="text/plain",
    summary="Prometheus metrics (text exposition format)",
)
async def metrics(call: Call) -> web.Response:
    text = await call.request.app[SERVICES].metrics.render()
    return web.Response(
        body=text.encode("utf-8"),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )
