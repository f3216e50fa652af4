"""`GET /me`: who the token in use is."""

from __future__ import annotations

from controller.api.models import Me
from controller.api.routing import ApiRoutes, Call
from inventory.token_store import Role

routes = ApiRoutes()


@routes.endpoint(
    "GET",
    "/me",
    role=Role.VIEWER,
    response=Me,
    tags=("auth",),
    summary="The role, site and name of the calling token",
)
async def me(call: Call) -> Me:
    caller = call.caller
    return Me(role=caller.role, site=caller.site, name=caller.name)
