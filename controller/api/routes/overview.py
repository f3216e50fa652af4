"""The dashboard's aggregate reads: `GET /overview` (the fleet at a glance) and
`GET /product-groups` (the filter's choices), so the overview page costs one request, not a
download of every device.

A token bound to a site sees that site's figures only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from controller.api.routing import ApiRoutes, Call
from controller.api.services import SERVICES
from controller.health import BY_RANK, STATUS_ORDER, unread_reason
from controller.usecases.health import status_rules
from inventory.catalog import PRODUCT_GROUP_TITLES
from inventory.device_queries import DeviceFilter
from inventory.fleet_summary import (
    expiring_licenses,
    last_observation,
    status_by_group,
    unreadable_devices,
)
from inventory.token_store import Role

routes = ApiRoutes()

EXPIRY_WINDOWS = (30, 60, 90)
UNREADABLE_SHOWN = 100


class GroupCounts(BaseModel):
    """Devices of one product group (None: not identified yet) by health status."""

    product_group: str | None
    title: str | None
    devices: int
    counts: dict[str, int]


class Expiring(BaseModel):
    """Active licenses expiring within `days` from now, and the devices that hold them."""

    days: int
    licenses: int
    devices: int


class Unreadable(BaseModel):
    """A device whose license state the last scan could not read, and why."""

    serial: str
    mac: str | None
    site: str | None
    status: str
    reason: str


class Overview(BaseModel):
    """The fleet at a glance."""

    checked_at: datetime
    last_scan: datetime | None = Field(description="when a scan last recorded any device")
    counts: dict[str, int] = Field(description="devices by health status")
    product_groups: list[GroupCounts]
    expiring: list[Expiring]
    unreadable: list[Unreadable] = Field(description=f"the first {UNREADABLE_SHOWN}, by serial")
    unreadable_total: int


class ProductGroup(BaseModel):
    id: str
    title: str


class ProductGroups(BaseModel):
    items: list[ProductGroup]


@routes.endpoint(
    "GET",
    "/overview",
    role=Role.VIEWER,
    response=Overview,
    tags=("dashboard",),
    summary="Health counts by status and product group, expiring licenses, unreadable devices",
)
async def overview(call: Call) -> Overview:
    services = call.request.app[SERVICES]
    engine = services.store.engine
    site = call.caller.site
    now = datetime.now(UTC)
    matching = DeviceFilter(site=site)
    rules = await status_rules(engine, now, services.health_policy())
    by_group, unreadable_total = await status_by_group(engine, rules, matching)
    unreadable = await unreadable_devices(engine, rules, matching, UNREADABLE_SHOWN)
    counts = {s.value: 0 for s in STATUS_ORDER}
    for group_counts in by_group.values():
        for rank, count in group_counts.items():
            counts[BY_RANK[rank].value] += count
    titles = {group.value: title for group, title in PRODUCT_GROUP_TITLES.items()}
    return Overview(
        checked_at=now,
        last_scan=await last_observation(engine, site),
        counts=counts,
        product_groups=[
            GroupCounts(
                product_group=group,
                title=titles.get(group) if group else None,
                devices=sum(group_counts.values()),
                counts={s.value: group_counts[s.rank] for s in STATUS_ORDER},
            )
            for group, group_counts in sorted(
                by_group.items(), key=lambda kv: (kv[0] is None, kv[0] or "")
            )
        ],
        expiring=[
            Expiring(days=w.days, licenses=w.licenses, devices=w.devices)
            for w in await expiring_licenses(engine, now, EXPIRY_WINDOWS, site)
        ],
        unreadable=[
            Unreadable(
                serial=device.serial,
                mac=device.mac,
                site=device.site,
                status=BY_RANK[device.rank].value,
                reason=unread_reason(device.serial, device.read),
            )
            for device in unreadable
        ],
        unreadable_total=unreadable_total,
    )


@routes.endpoint(
    "GET",
    "/product-groups",
    role=Role.VIEWER,
    response=ProductGroups,
    tags=("dashboard",),
    summary="The product groups of the fee table (ids the device filter takes)",
)
async def list_product_groups(call: Call) -> ProductGroups:
    return ProductGroups(
        items=[ProductGroup(id=g.value, title=t) for g, t in PRODUCT_GROUP_TITLES.items()]
    )
