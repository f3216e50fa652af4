"""`GET /api/v1/openapi.json`: the document of every registered route (public)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from controller.api.routing import ApiRoutes, Call

routes = ApiRoutes()
DOCUMENT: web.AppKey[dict[str, Any]] = web.AppKey("openapi_document", dict)


@routes.endpoint(
    "GET",
    "/openapi.json",
    role=None,
    content_type="application/json",
    tags=("meta",),
    summary="This API's OpenAPI 3.1 document",
)
async def openapi_json(call: Call) -> web.Response:
    return web.Response(
        text=json.dumps(call.request.app[DOCUMENT]), content_type="application/json"
    )
