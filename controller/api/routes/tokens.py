"""Admin routes managing API tokens (the secret is shown once, in the 201 answer)."""

from __future__ import annotations

from controller.api.models import TokenCreate, TokenCreated, TokenInfo, TokenList
from controller.api.problems import FieldError, Problem
from controller.api.routing import ApiRoutes, Call
from controller.api.services import SERVICES
from inventory.token_store import Role, TokenNotFound

routes = ApiRoutes()


@routes.endpoint(
    "POST",
    "/tokens",
    role=Role.ADMIN,
    body=TokenCreate,
    response=TokenCreated,
    status=201,
    tags=("auth",),
    summary="Create a token (shown once)",
)
async def create_token(call: Call) -> TokenCreated:
    wanted = call.body_as(TokenCreate)
    if wanted.role is Role.AGENT and wanted.site is None:
        raise Problem(
            400,
            "an agent token is bound to one site",
            errors=[FieldError(field="body.site", message="required for role agent")],
        )
    token, secret = await call.request.app[SERVICES].tokens.create(
        wanted.role, site=wanted.site, name=wanted.name
    )
    return TokenCreated(id=token.id, token=secret)


@routes.endpoint(
    "GET",
    "/tokens",
    role=Role.ADMIN,
    response=TokenList,
    tags=("auth",),
    summary="Every token, without secrets",
)
async def list_tokens(call: Call) -> TokenList:
    tokens = await call.request.app[SERVICES].tokens.list()
    return TokenList(items=[TokenInfo.model_validate(token) for token in tokens])


@routes.endpoint(
    "DELETE",
    "/tokens/{id}",
    role=Role.ADMIN,
    response=TokenInfo,
    responses={404: "no token has that id"},
    tags=("auth",),
    summary="Revoke a token",
)
async def revoke_token(call: Call) -> TokenInfo:
    try:
        token = await call.request.app[SERVICES].tokens.revoke(call.path["id"])
    except TokenNotFound as exc:
        raise Problem(404, str(exc)) from None
    return TokenInfo.model_validate(token)
