"""Gathering what `evaluate()` needs for one device from the store, for the CLI and the workflow.

`controller.eligibility.evaluate` stays pure; this is the one place that knows which contracts
and which site record to hand it, so `polyfleet quote` and the re-activation workflow cannot
disagree about a device's eligibility.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from controller.eligibility import Quote, evaluate
from controller.policy import Policy
from inventory.async_engine import AsyncEngine
from inventory.contract_store import ContractStore
from inventory.models import Device


async def quote_device(
    engine: AsyncEngine,
    device: Device,
    policy: Policy,
    on: date,
    *,
    feature: str | None = None,
) -> Quote:
    """The quote for a registered device: its contracts and its site's record from the store.

    The site's country and region come from the `sites` table when it has the site, else from
    the policy's [sites] map, else the policy's `sla.default_country`.
    """
    return (await quote_devices(engine, [(device, feature)], policy, on))[0]


async def quote_devices(
    engine: AsyncEngine,
    targets: Sequence[tuple[Device, str | None]],
    policy: Policy,
    on: date,
) -> list[Quote]:
    """`quote_device` of every (device, feature) in `targets`, in order, with the contracts and
    site records read for all of them at once (a batch's quotes: a few queries, not two each)."""
    contracts = ContractStore(engine)
    groups = {device.serial: policy.product_group_for(device)[0] for device, _ in targets}
    covering = await contracts.contracts_for_many(groups)
    sites = await contracts.sites_named(device.site for device, _ in targets)
    quotes = []
    for device, feature in targets:
        site = sites.get(device.site) if device.site is not None else None
        quotes.append(
            evaluate(
                device,
                covering[device.serial],
                policy,
                on,
                site.country if site else None,
                site_region=site.region if site else None,
                feature=feature,
            )
        )
    return quotes
