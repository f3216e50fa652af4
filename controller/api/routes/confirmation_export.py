"""`GET /confirmations/export?format=csv|json`: the same file `polyfleet confirmations export`
writes (signatures included), so the dashboard's download verifies with
`polyfleet confirmations verify --export FILE`."""

from __future__ import annotations

import io

from aiohttp import web
from pydantic import Field

from controller.api.models import Strict
from controller.api.routing import ApiRoutes, Call
from controller.api.services import SERVICES
from controller.confirmation_export import ExportKind, write_export
from controller.confirmations import confirmation_store, signed_record
from inventory.token_store import Role

routes = ApiRoutes()

_TYPES = {"json": "application/json", "csv": "text/csv"}


class ExportQuery(Strict):
    format: ExportKind = Field(default="json", description="json or csv")


@routes.endpoint(
    "GET",
    "/confirmations/export",
    role=Role.VIEWER,
    query=ExportQuery,
    tags=("confirmations",),
    content_type={
        "application/json": {"type": "array", "items": {"type": "object"}},
        "text/csv": {"type": "string"},
    },
    summary="Every confirmation in chain order, as `confirmations export` writes it",
)
async def export_confirmations(call: Call) -> web.Response:
    kind = call.query_as(ExportQuery).format
    store = call.request.app[SERVICES].store
    records = [signed_record(c) for c in await confirmation_store(store.engine).list()]
    out = io.StringIO()
    write_export(records, kind, out)
    return web.Response(
        text=out.getvalue(),
        content_type=_TYPES[kind],
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="confirmations.{kind}"'},
    )
