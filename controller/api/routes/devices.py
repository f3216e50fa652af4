"""`GET /devices` (filtered, searched, sorted, paginated), `GET /devices/{id}` and the device's
observation history `GET /devices/{id}/observations`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from controller.api.metrics import CACHE_COUNTER
from controller.api.models import (
    DETAIL_OBSERVATIONS,
    ConfirmationOut,
    DeviceDetail,
    DevicePage,
    DeviceQuery,
    LicenseOut,
    LicenseReadOut,
    ObservationOut,
    ObservationPage,
    PageQuery,
)
from controller.api.response_cache import Computed, ResponseCache, etag_of, json_answer
from controller.api.routing import ApiRoutes, Call
from controller.api.services import SERVICES
from controller.confirmations import confirmation_store, signed_record
from controller.health import DeviceHealth, HealthPolicy
from controller.usecases.devices import (
    DeviceListing,
    device_detail,
    device_history,
    history_of,
    list_devices,
)
from controller.verdict_expiry import earliest, verdict_valid_until
from inventory import pg_direct
from inventory.device_queries import DeviceFilter, DeviceSort
from inventory.models import Device, LicenseRead
from inventory.observation_history import HistoryEntry
from inventory.observation_store import DeviceStatus
from inventory.token_store import Role

routes = ApiRoutes()


def _read(read: LicenseRead | None) -> LicenseReadOut | None:
    return None if read is None else LicenseReadOut.model_validate(read.to_json())


def device_fields(
    device: Device, status: DeviceStatus | None, verdict: DeviceHealth
) -> dict[str, Any]:
    """The list JSON of one device (DeviceOut's fields): its record, latest observation and
    verdict. Plain values, validated once with the page they go in (`device_page`): one pass
    over a page of 50 devices instead of a model built per device and per license."""
    return {
        "id": device.serial,
        "serial": device.serial,
        "mac": device.mac,
        "model": device.model,
        "product_group": device.product_group,
        "driver": device.driver or (status.driver if status else None),
        "host": device.host,
        "site": device.site,
        "reachable": status.reachable if status else None,
        "error": status.error if status else None,
        "error_kind": status.error_kind if status else None,
        "firmware": device.firmware,
        "licenses": [
            {"feature": lic.feature, "state": lic.state, "expires_at": lic.expires_at}
            for lic in (status.licenses if status else ())
        ],
        "license_read": (status.license_read.to_json() if status and status.license_read else None),
        "observed_at": status.observed_at if status else None,
        "status": verdict.status,
        "reason": verdict.reason,
        "tags": device.tags,
    }


def device_page(listing: DeviceListing, *, limit: int, offset: int) -> DevicePage:
    """The `GET /devices` page of a listing."""
    return DevicePage.model_validate(
        {
            "items": [device_fields(*row) for row in listing.rows],
            "total": listing.total,
            "limit": limit,
            "offset": offset,
        }
    )


LISTING_CACHE: web.AppKey[ResponseCache | None] = web.AppKey("listing_cache")
"""The cache of `GET /devices` answers (None: not cached, e.g. on SQLite)."""
_ROUTE = "/api/v1/devices"


def setup(app: web.Application) -> None:
    """The listing's cache, as the `serve` settings size it (PostgreSQL only)."""
    services = app[SERVICES]
    serve = services.settings.serve
    cached = serve.list_cache_bytes > 0 and pg_direct.is_postgres(services.store.engine)
    app[LISTING_CACHE] = (
        ResponseCache(max_bytes=serve.list_cache_bytes, max_age=serve.list_cache_max_age)
        if cached
        else None
    )


LISTING_CACHING = """
Answers are cached by the controller (on PostgreSQL; setting `serve.list_cache_bytes`), per
query and per role and site of the token; the token is checked on every request. A cached
answer is served only while the store's data generation (advanced by every write to devices,
statuses, licenses and sites) is the one it was computed at, and only until the first moment a
health verdict on its page could read differently with time. An answer computed while some
write was still uncommitted is served at most `serve.list_cache_max_age` seconds (default 5):
the bound on how late such a write may show. Queries by `status` or `sort=status` are not
cached. Every answer carries an `ETag`; a request with a matching `If-None-Match` is answered
304 without a body. `Age` (seconds) is set on an answer served from the cache."""


@routes.endpoint(
    "GET", "/devices", role=Role.VIEWER, query=DeviceQuery, response=DevicePage,
    tags=("devices",), summary="Devices, filtered, searched by serial or MAC, paginated",
    description=LISTING_CACHING,
    responses={304: "not modified: the `If-None-Match` entity tag is the answer's"},
)  # fmt: skip
async def get_devices(call: Call) -> web.Response:
    query = call.query_as(DeviceQuery)
    app = call.request.app
    cache, generation = app[LISTING_CACHE], call.caller.store_generation
    metrics = app[SERVICES].metrics
    if cache is None or generation is None or query.status is not None or query.sort == "status":
        metrics.count(CACHE_COUNTER, route=_ROUTE, result="bypass")
        body = (await _listing(call, query, datetime.now(UTC)))[0]
        return json_answer(call.request, body, etag_of(body))
    policy = app[SERVICES].health_policy()
    key = (call.caller.role, call.caller.site, *query.model_dump(mode="json").items())

    async def compute() -> Computed:
        # after the token check read `generation`; this listing's snapshot is later still
        exact = not await pg_direct.writes_in_flight(app[SERVICES].store.engine)
        now = cache.clock()
        body, listing = await _listing(call, query, now, policy)
        valid_until = earliest(verdict_valid_until(d, s, now, policy) for d, s, _ in listing.rows)
        return Computed(body, now, valid_until, exact)

    entry, result = await cache.fetch(key, generation, compute)
    metrics.count(CACHE_COUNTER, route=_ROUTE, result=result)
    age = int(time.monotonic() - entry.computed_at) if result != "miss" else None
    return json_answer(call.request, entry.body, entry.etag, age=age)


async def _listing(
    call: Call, query: DeviceQuery, now: datetime, policy: HealthPolicy | None = None
) -> tuple[bytes, DeviceListing]:
    """The `GET /devices` answer at `now` under `policy` (default: the controller's), and the
    listing it shows (the cache works out from its rows until when their verdicts hold)."""
    services = call.request.app[SERVICES]
    policy = policy or services.health_policy()
    matching = DeviceFilter(
        site=query.site,
        model=query.model,
        product_group=query.product_group.value if query.product_group else None,
        q=query.q,
    )
    listing = await list_devices(
        services.store, matching, status=query.status,
        sort="status" if query.sort == "status" else DeviceSort(query.sort),
        descending=query.order == "desc", limit=query.limit, offset=query.offset,
        now=now, policy=policy,
    )  # fmt: skip
    page = device_page(listing, limit=query.limit, offset=query.offset)
    return page.model_dump_json(by_alias=True).encode(), listing


@routes.endpoint(
    "GET", "/devices/{id}", role=Role.VIEWER, response=DeviceDetail, tags=("devices",),
    responses={404: "no device has that serial or MAC"},
    summary="One device (serial or MAC, any spelling) with observations and confirmations",
)  # fmt: skip
async def get_device(call: Call) -> DeviceDetail:
    services = call.request.app[SERVICES]
    device, status, verdict = await device_detail(
        services.store, call.path["id"], datetime.now(UTC), services.health_policy()
    )
    records = await confirmation_store(services.store.engine).list(
        serial=device.serial, mac=device.mac
    )
    history = await history_of(services.store, device.serial, limit=DETAIL_OBSERVATIONS)
    return DeviceDetail(
        **device_fields(device, status, verdict),
        observations=[observation_out(entry) for entry in history.entries],
        observations_total=history.total,
        confirmations=[ConfirmationOut.model_validate(signed_record(c)) for c in records],
    )


def observation_out(entry: HistoryEntry) -> ObservationOut:
    """One kept observation as JSON."""
    return ObservationOut(
        observed_at=entry.observed_at,
        reachable=entry.reachable,
        driver=entry.driver,
        error_kind=entry.error_kind,
        error=entry.error,
        identity_mismatch=entry.identity_mismatch,
        licenses=None
        if entry.licenses is None
        else [
            LicenseOut(feature=f.feature, state=f.state, expires_at=f.expires_at)
            for f in entry.licenses
        ],
        license_read=_read(entry.license_read),
    )


@routes.endpoint(
    "GET", "/devices/{id}/observations", role=Role.VIEWER, query=PageQuery,
    response=ObservationPage, tags=("devices",),
    responses={404: "no device has that serial or MAC"},
    summary="The device's kept observations (scan results), newest first, paginated",
)  # fmt: skip
async def get_device_observations(call: Call) -> ObservationPage:
    query = call.query_as(PageQuery)
    _, history = await device_history(
        call.request.app[SERVICES].store, call.path["id"], limit=query.limit, offset=query.offset
    )
    return ObservationPage(
        items=[observation_out(entry) for entry in history.entries],
        total=history.total,
        limit=query.limit,
        offset=query.offset,
    )
