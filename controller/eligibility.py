"""The rules engine: may this device be re-activated, under which contract, at what fee, by when.

Pure: `evaluate()` takes the device, the contracts that may cover it, the policy and a date, and
returns a Quote; no store, no clock, no network. `polyfleet quote` prints it and the
re-activation workflow records it, so both always agree. Every rule is reported, passed or not,
with a reason a technician can read out on the phone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from controller.policy import Exclusion, Policy, PpiFee, ReactivationFee, pattern_matches
from controller.sla import UnknownCountry, add_business_days, holidays_between
from inventory.catalog import ProductGroup
from inventory.models import Contract, ContractKind, Device, Pricing

RULE_REGISTERED = "registered"
RULE_PRODUCT_GROUP = "product-group"
RULE_MODEL = "model-not-excluded"
RULE_FEATURE = "feature-not-excluded"
RULE_REGION = "region-not-excluded"
RULE_VOIP_PARTNER = "certified-voip-partner"
RULE_CONTRACT = "contract"
RULE_FEE = "fee"
RULES: tuple[str, ...] = (
    RULE_REGISTERED,
    RULE_PRODUCT_GROUP,
    RULE_MODEL,
    RULE_FEATURE,
    RULE_REGION,
    RULE_VOIP_PARTNER,
    RULE_CONTRACT,
    RULE_FEE,
)
"""Every quote lists these rules, in this order, so scripts can look one up by name."""

_MAX_NEAR_MISSES = 3


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RuleResult(_Frozen):
    """One eligibility rule: whether it passed, and why (in words for the technician)."""

    name: str
    passed: bool
    reason: str


class Holiday(_Frozen):
    """A public holiday the SLA due date skips."""

    date: date
    name: str


class Quote(_Frozen):
    """The answer for one device on one day: eligibility rule by rule, fee, contract, due date.

    `fee` is what this re-activation charges (2 decimal places, in `currency`), set only when the
    device is eligible; with `pricing` per-term it is the contract term's single charge, shared
    by every device the contract covers. `ppi_fee` is the pay-per-incident fee in force for the
    product group, shown as the alternative; it does not cover repair/RMA.
    """

    serial: str
    mac: str | None
    model: str | None
    product_group: ProductGroup | None
    site: str | None
    feature: str | None
    on: date
    eligible: bool
    rules: list[RuleResult]
    contract: str | None
    contract_kind: ContractKind | None
    contract_end: date | None
    pricing: Pricing | None
    fee: Decimal | None
    fee_effective: date | None
    currency: str
    ppi_fee: Decimal | None
    ppi_fee_effective: date | None
    sla_business_days: int
    sla_country: str
    sla_due: date
    sla_holidays: list[Holiday] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    policy: str

    @property
    def failed(self) -> list[RuleResult]:
        """The rules that make the device ineligible (empty when eligible)."""
        return [rule for rule in self.rules if not rule.passed]

    def rule(self, name: str) -> RuleResult:
        """The result of the rule called `name` (one of RULES)."""
        return next(rule for rule in self.rules if rule.name == name)


def _excluded(patterns: Iterable[tuple[str, str | None]], name: str) -> tuple[str, str | None]:
    for pattern, reason in patterns:
        if pattern_matches(pattern, name):
            return pattern, reason
    return "", None


def _coverage(contract: Contract, serial: str, group: ProductGroup | None) -> str | None:
    """How a contract names the device ("by serial", "by product group"), or None."""
    if serial in contract.serials:
        return "by serial"
    if group is not None and group in contract.product_groups:
        return f"by product group {group}"
    return None


def _span(contract: Contract) -> str:
    return f"{contract.start}..{contract.end}"


def choose_contract(
    device: Device,
    group: ProductGroup | None,
    contracts: Iterable[Contract],
    policy: Policy,
    on: date,
    region: str | None,
) -> tuple[Contract | None, RuleResult]:
    """The contract that covers re-activating the device on `on`, and the contract rule's result.

    Preference: the Extended Reactivation Service over other kinds, a contract naming the serial
    over one naming the product group, then the one that runs longest.
    """
    candidates: list[tuple[Contract, str]] = []
    misses: list[str] = []
    covering_kinds = policy.eligibility.covering_kinds
    for contract in sorted(contracts, key=lambda c: c.number):
        how = _coverage(contract, device.serial, group)
        if how is None:
            continue
        label = f"{contract.number} ({contract.kind}, {how})"
        if contract.region and (region or "").casefold() != contract.region.casefold():
            where = f"region {region}" if region else "a site with no known region"
            misses.append(
                f"{label} is limited to region {contract.region}, the device is in {where}"
            )
        elif on < contract.start:
            misses.append(f"{label} starts on {contract.start}")
        elif on > contract.end:
            misses.append(f"{label} ended on {contract.end}")
        elif contract.kind not in covering_kinds:
            misses.append(
                f"{label} does not cover re-activation under this policy "
                f"(eligibility.covering_kinds: {', '.join(covering_kinds)})"
            )
        else:
            candidates.append((contract, how))
    if candidates:
        contract, how = min(
            candidates,
            key=lambda item: (
                item[0].kind is not ContractKind.EXTENDED_REACTIVATION,
                item[1] != "by serial",
                -item[0].end.toordinal(),
                item[0].number,
            ),
        )
        reason = f"{contract.kind} {contract.number} covers the device {how}, {_span(contract)}"
        return contract, RuleResult(name=RULE_CONTRACT, passed=True, reason=reason)
    if not misses:
        whom = f"serial {device.serial}" + (f" or product group {group}" if group else "")
        reason = f"no contract or warranty covers {whom}"
    else:
        shown = misses[:_MAX_NEAR_MISSES]
        more = len(misses) - len(shown)
        reason = "no active contract covering re-activation on " + f"{on}: " + "; ".join(shown)
        if more:
            reason += f" (+{more} more)"
    return None, RuleResult(name=RULE_CONTRACT, passed=False, reason=reason)


def evaluate(
    device: Device,
    contracts: Iterable[Contract],
    policy: Policy,
    on: date,
    site_country: str | None = None,
    *,
    site_region: str | None = None,
    feature: str | None = None,
) -> Quote:
    """Apply the policy to one registered device on day `on`.

    `contracts` may be every stored contract or just those naming the device. `site_country` and
    `site_region` come from the site's record when there is one; otherwise the policy's [sites]
    map and `sla.default_country` decide. `feature` is the license feature to re-activate.
    """
    notes = list(policy.notes)
    info = policy.site_info(device.site)
    region = site_region or (info.region if info else None)
    country = (site_country or policy.country_for(device.site)).upper()

    group, group_rule = _product_group_rule(device, policy)
    contract, contract_rule = choose_contract(device, group, contracts, policy, on, region)
    fee_entry, fee_rule = _fee_rule(contract, group, policy, on)
    rules = [
        _registered_rule(device),
        group_rule,
        _exclusion_rule(
            RULE_MODEL, "model", device.model, policy.eligibility.excluded_models,
            "excluded_models", absent="no model recorded",
        ),
        _exclusion_rule(
            RULE_FEATURE, "feature", feature, policy.eligibility.excluded_features,
            "excluded_features", absent="no feature named",
        ),
        _region_rule(device, policy, region, country),
        _voip_rule(group, policy),
        contract_rule,
        fee_rule,
    ]  # fmt: skip
    eligible = all(rule.passed for rule in rules)
    ppi = policy.ppi_fee(group, on) if group is not None else None
    if not eligible:
        notes += _ineligible_notes(group, ppi, policy)
    country, due, skipped = _sla(on, country, policy, notes)

    return Quote(
        serial=device.serial,
        mac=device.mac,
        model=device.model,
        product_group=group,
        site=device.site,
        feature=feature,
        on=on,
        eligible=eligible,
        rules=rules,
        contract=contract.number if contract else None,
        contract_kind=contract.kind if contract else None,
        contract_end=contract.end if contract else None,
        pricing=contract.pricing if contract else None,
        fee=fee_entry.amount if fee_entry is not None and eligible else None,
        fee_effective=fee_entry.effective if fee_entry is not None and eligible else None,
        currency=policy.currency,
        ppi_fee=ppi.amount if ppi else None,
        ppi_fee_effective=ppi.effective if ppi else None,
        sla_business_days=policy.sla.business_days,
        sla_country=country,
        sla_due=due,
        sla_holidays=skipped,
        notes=notes,
        policy=policy.source,
    )


def _registered_rule(device: Device) -> RuleResult:
    """Always passed: the caller found the device in the inventory; the reason says by what."""
    registered = f"serial {device.serial} is in the inventory"
    if device.model:
        registered += f" (model {device.model})"
    return RuleResult(name=RULE_REGISTERED, passed=True, reason=registered)


def _product_group_rule(device: Device, policy: Policy) -> tuple[ProductGroup | None, RuleResult]:
    """The device's product group (policy first, then catalogue) and whether it has one."""
    group, how = policy.product_group_for(device)
    if group is not None:
        reason = f"{policy.group_title(group)}: {how}"
        return group, RuleResult(name=RULE_PRODUCT_GROUP, passed=True, reason=reason)
    if device.model:
        reason = f"model {device.model!r} matches no product group (policy or catalogue)"
    else:
        reason = f"product group unknown: {how}"
    return None, RuleResult(name=RULE_PRODUCT_GROUP, passed=False, reason=reason)


def _exclusion_rule(
    name: str,
    what: str,
    value: str | None,
    exclusions: Iterable[Exclusion],
    setting: str,
    *,
    absent: str,
) -> RuleResult:
    """Model and feature exclusions alike: the first matching pattern fails the rule, with the
    policy's reason for it."""
    patterns = [(e.pattern, e.reason) for e in exclusions]
    pattern, why = _excluded(patterns, value) if value else ("", None)
    if not pattern:
        reason = f"{what} {value!r} is not excluded" if value else absent
        return RuleResult(name=name, passed=True, reason=reason)
    reason = f"{what} {value!r} is excluded (eligibility.{setting} {pattern!r})"
    return RuleResult(name=name, passed=False, reason=f"{reason}: {why}" if why else reason)


def _fee_rule(
    contract: Contract | None, group: ProductGroup | None, policy: Policy, on: date
) -> tuple[ReactivationFee | None, RuleResult]:
    """The re-activation fee the covering contract's pricing puts in force on `on`."""
    if contract is None:
        return None, RuleResult(name=RULE_FEE, passed=False, reason="no applicable contract")
    fee_entry = policy.reactivation_fee(contract.pricing, group, on)
    if fee_entry is None:
        reason = (
            f"the policy has no {contract.pricing} reactivation fee in force on {on} "
            "(reactivation_fees)"
        )
        return None, RuleResult(name=RULE_FEE, passed=False, reason=reason)
    amount = f"{fee_entry.amount} {policy.currency}"
    if contract.pricing is Pricing.PER_TERM:
        reason = (
            f"{amount} per contract term of {contract.number} ({_span(contract)}), "
            f"one charge shared by every device it covers (effective {fee_entry.effective})"
        )
    else:
        reason = f"{amount} per device (effective {fee_entry.effective})"
    return fee_entry, RuleResult(name=RULE_FEE, passed=True, reason=reason)


def _ineligible_notes(group: ProductGroup | None, ppi: PpiFee | None, policy: Policy) -> list[str]:
    """What an ineligible device's owner can do instead (pay-per-incident, the reseller)."""
    notes = []
    if ppi is not None and group is not None:
        notes.append(
            f"Alternative: pay-per-incident support for {policy.group_title(group)} "
            f"costs {ppi.amount} {policy.currency} (in force since {ppi.effective}); "
            "it does not cover repair/RMA."
        )
    if group in policy.eligibility.voip_partner_groups:
        notes.append("VoIP products (SoundStation IP, SoundPoint IP): contact your reseller.")
    return notes


def _sla(
    on: date, country: str, policy: Policy, notes: list[str]
) -> tuple[str, date, list[Holiday]]:
    """(country, due date, holidays skipped) of the SLA; a country without a holiday calendar
    falls back to the policy's default, with a note saying so."""
    days = policy.sla.business_days
    try:
        due = add_business_days(on, days, country)
    except UnknownCountry:
        notes.append(
            f"No holiday calendar for country {country!r}; the SLA uses "
            f"{policy.sla.default_country} instead."
        )
        country = policy.sla.default_country
        due = add_business_days(on, days, country)
    skipped = [Holiday(date=day, name=name) for day, name in holidays_between(on, due, country)]
    return country, due, skipped


def _region_rule(device: Device, policy: Policy, region: str | None, country: str) -> RuleResult:
    site = f"site {device.site}" if device.site else "no site"
    excluded_regions = {r.casefold(): r for r in policy.eligibility.excluded_regions}
    if region and region.casefold() in excluded_regions:
        reason = f"{site} is in region {region}, excluded (eligibility.excluded_regions)"
        return RuleResult(name=RULE_REGION, passed=False, reason=reason)
    base_country = country.partition("-")[0]
    for excluded in policy.eligibility.excluded_countries:
        if excluded in (country, base_country):
            reason = f"{site} is in country {country}, excluded (eligibility.excluded_countries)"
            return RuleResult(name=RULE_REGION, passed=False, reason=reason)
    where = f"region {region}, country {country}" if region else f"country {country}"
    return RuleResult(name=RULE_REGION, passed=True, reason=f"{site} ({where}) is not excluded")


def _voip_rule(group: ProductGroup | None, policy: Policy) -> RuleResult:
    if group is None or group not in policy.eligibility.voip_partner_groups:
        return RuleResult(
            name=RULE_VOIP_PARTNER, passed=True, reason="not a VoIP product group (rule n/a)"
        )
    title = policy.group_title(group)
    if policy.eligibility.certified_voip_partner:
        reason = f"{title}: we are a Certified VoIP Partner (eligibility.certified_voip_partner)"
        return RuleResult(name=RULE_VOIP_PARTNER, passed=True, reason=reason)
    reason = (
        f"support for {title} is only extended to Certified VoIP Partners, and this policy says we "
        "are not one (eligibility.certified_voip_partner = false)"
    )
    return RuleResult(name=RULE_VOIP_PARTNER, passed=False, reason=reason)
