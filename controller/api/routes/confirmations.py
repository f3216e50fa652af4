"""`GET /confirmations` (pages of the record) and `GET /confirmations/verify` (its audit)."""

from __future__ import annotations

from controller.api.models import ChainVerdict, ConfirmationOut, ConfirmationPage, PageQuery
from controller.api.routing import ApiRoutes, Call
from controller.api.services import SERVICES
from controller.confirmations import signed_record
from controller.usecases.confirmations import audit_store, confirmation_page
from inventory.signing_key import SigningKey
from inventory.token_store import Role

routes = ApiRoutes()


@routes.endpoint(
    "GET", "/confirmations", role=Role.VIEWER, query=PageQuery, response=ConfirmationPage,
    tags=("confirmations",), summary="Confirmations in chain order (oldest first)",
)  # fmt: skip
async def get_confirmations(call: Call) -> ConfirmationPage:
    query = call.query_as(PageQuery)
    engine = call.request.app[SERVICES].store.engine
    total, records = await confirmation_page(engine, limit=query.limit, offset=query.offset)
    return ConfirmationPage(
        items=[ConfirmationOut.model_validate(signed_record(c)) for c in records],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


@routes.endpoint(
    "GET", "/confirmations/verify", role=Role.VIEWER, response=ChainVerdict,
    tags=("confirmations",),
    summary="Recompute every hash, link and (with the controller's key) signature",
)  # fmt: skip
async def verify_confirmations(call: Call) -> ChainVerdict:
    engine = call.request.app[SERVICES].store.engine
    signing = SigningKey.load()  # never created here: a check must not mint its own key
    key = None if signing is None else signing.public
    report, _ = await audit_store(engine, key)
    problem = report.problem
    detail = None
    if problem is not None:
        detail = f"confirmation {problem.number} (seq {problem.seq}), {problem.field}: "
        detail += problem.message
    elif key is None and report.count:
        detail = "signatures not checked: the controller has no signing key"
    return ChainVerdict(
        intact=report.intact,
        records=report.count,
        head_hash=report.head_hash,
        key_id=None if key is None else key.key_id,
        detail=detail,
    )
