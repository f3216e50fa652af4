"""`GET /devices` (filtered, searched, sorted, paginated), `GET /devices/{id}` and the device's
observation history `GET /devices/{id}/observations`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
from controller.api.routing import ApiRoutes, Call
from controller.api.services import SERVICES
from controller.confirmations import confirmation_store, signed_record
from controller.health import DeviceHealth
from controller.usecases.devices import (
    DeviceListing,
    device_detail,
    device_history,
    history_of,
    list_devices,
)
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


@routes.endpoint(
    "GET", "/devices", role=Role.VIEWER, query=DeviceQuery, response=DevicePage,
    tags=("devices",), summary="Devices, filtered, searched by serial or MAC, paginated",
)  # fmt: skip
async def get_devices(call: Call) -> DevicePage:
    query = call.query_as(DeviceQuery)
    services = call.request.app[SERVICES]
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
        now=datetime.now(UTC), policy=services.health_policy(),
    )  # fmt: skip
    return device_page(listing, limit=query.limit, offset=query.offset)


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
