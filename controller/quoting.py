"""Gathering what `evaluate()` needs for one device from the store, for the CLI and the workflow.

`controller.eligibility.evaluate` stays pure; this is the one place that knows which contracts
and which site record to hand it, so `polyfleet quote` and the re-activation workflow cannot
disagree about a device's eligibility.
"""

from __future__ import annotations

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
    contracts = ContractStore(engine)
    group, _ = policy.product_group_for(device)
    covering = await contracts.contracts_for(device.serial, group)
    site = await contracts.get_site(device.site)
    return evaluate(
        device,
        covering,
        policy,
        on,
        site.country if site else None,
        site_region=site.region if site else None,
        feature=feature,
    )
