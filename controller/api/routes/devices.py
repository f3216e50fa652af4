"""`GET /devices` (filtered, searched, sorted, paginated) and `GET /devices/{id}`."""

from __future__ import annotations

from datetime import UTC, datetime

from controller.api.models import (
    ConfirmationOut,
    DeviceDetail,
    DeviceOut,
    DevicePage,
    DeviceQuery,
    LicenseOut,
    LicenseReadOut,
    ObservationOut,
)
from controller.api.routing import ApiRoutes, Call
from controller.api.services import SERVICES
from controller.confirmations import confirmation_store, signed_record
from controller.health import DeviceHealth
from controller.usecases.devices import device_detail, list_devices
from inventory.device_queries import DeviceFilter, DeviceSort
from inventory.models import Device, LicenseRead
from inventory.observation_store import DeviceStatus
from inventory.token_store import Role

routes = ApiRoutes()


def _read(read: LicenseRead | None) -> LicenseReadOut | None:
    return None if read is None else LicenseReadOut.model_validate(read.to_json())


def device_out(device: Device, status: DeviceStatus | None, verdict: DeviceHealth) -> DeviceOut:
    """The list JSON of one device: its record, latest observation and verdict."""
    return DeviceOut(
        id=device.serial,
        serial=device.serial,
        mac=device.mac,
        model=device.model,
        product_group=device.product_group,
        driver=device.driver or (status.driver if status else None),
        host=device.host,
        site=device.site,
        reachable=status.reachable if status else None,
        error=status.error if status else None,
        error_kind=status.error_kind if status else None,
        firmware=device.firmware,
        licenses=[
            LicenseOut(feature=lic.feature, state=lic.state, expires_at=lic.expires_at)
            for lic in (status.licenses if status else ())
        ],
        license_read=_read(status.license_read) if status else None,
        observed_at=status.observed_at if status else None,
        status=verdict.status,
        reason=verdict.reason,
        tags=device.tags,
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
    return DevicePage(
        items=[device_out(*row) for row in listing.rows],
        total=listing.total,
        limit=query.limit,
        offset=query.offset,
    )


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
    observations = []
    if status is not None:
        observations.append(
            ObservationOut(
                observed_at=status.observed_at,
                reachable=status.reachable,
                driver=status.driver,
                error_kind=status.error_kind,
                error=status.error,
                identity_mismatch=status.identity_mismatch,
                license_read=_read(status.license_read),
            )
        )
    return DeviceDetail(
        **device_out(device, status, verdict).model_dump(),
        observations=observations,
        confirmations=[ConfirmationOut.model_validate(signed_record(c)) for c in records],
    )
