"""The rules engine: each rule passes and fails with its reason; contract choice; fee; SLA."""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from controller.eligibility import (
    RULE_CONTRACT,
    RULE_FEATURE,
    RULE_FEE,
    RULE_MODEL,
    RULE_PRODUCT_GROUP,
    RULE_REGION,
    RULE_VOIP_PARTNER,
    RULES,
    Quote,
    evaluate,
)
from controller.policy import Policy, default_policy, load_policy
from inventory.catalog import ProductGroup
from inventory.models import Contract, ContractKind, Device, Pricing

FIXTURES = Path(__file__).parents[2] / "fixtures" / "policy"
DAY = date(2026, 11, 23)  # a Monday
PHONE = Device(serial="0004F2AABB01", mac="0004f2aabb01", model="VVX 450", site="hq-berlin")
CAMERA = Device(serial="8L2003534AFC", mac="64167f000002", model="Studio X50", site="hq-berlin")


def contract(number: str = "C-1", **changes: Any) -> Contract:
    fields: dict[str, Any] = {
        "kind": ContractKind.EXTENDED_REACTIVATION,
        "number": number,
        "start": date(2026, 1, 1),
        "end": date(2026, 12, 31),
        "serials": frozenset({PHONE.serial, CAMERA.serial}),
    }
    fields.update(changes)
    return Contract(**fields)


def policy_with(**sections: dict[str, Any]) -> Policy:
    """The default policy with some sections' keys replaced."""
    text = resources.files("controller").joinpath("policy_default.toml").read_text("utf-8")
    data = tomllib.loads(text, parse_float=Decimal)
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values}
    return Policy.model_validate(data)


def failed(quote: Quote) -> dict[str, str]:
    return {rule.name: rule.reason for rule in quote.rules if not rule.passed}


def test_an_eligible_device_gets_every_rule_a_fee_a_contract_and_a_due_date() -> None:
    quote = evaluate(PHONE, [contract()], default_policy(), DAY)
    assert quote.eligible
    assert [rule.name for rule in quote.rules] == list(RULES)
    assert all(rule.passed and rule.reason for rule in quote.rules)
    assert (quote.contract, quote.contract_kind) == ("C-1", ContractKind.EXTENDED_REACTIVATION)
    assert (quote.fee, quote.currency, quote.pricing) == (
        Decimal("49.00"),
        "USD",
        Pricing.PER_DEVICE,
    )
    assert str(quote.fee) == "49.00"
    assert quote.product_group is ProductGroup.SOUNDPOINT_IP
    assert (quote.ppi_fee, quote.ppi_fee_effective) == (Decimal("195.00"), date(2007, 8, 23))
    assert (quote.sla_country, quote.sla_business_days, quote.sla_due) == (
        "DE",
        2,
        date(2026, 11, 25),
    )
    assert quote.failed == []
    assert "49.00 USD per device" in quote.rule(RULE_FEE).reason
    assert any("repair/RMA" in note for note in quote.notes)


def test_json_form_keeps_money_exact() -> None:
    data = evaluate(PHONE, [contract()], default_policy(), DAY).model_dump(mode="json")
    assert data["fee"] == "49.00"
    assert data["ppi_fee"] == "195.00"
    assert data["sla_due"] == "2026-11-25"
    assert data["rules"][0] == {
        "name": "registered",
        "passed": True,
        "reason": "serial 0004F2AABB01 is in the inventory (model VVX 450)",
    }


def test_not_a_certified_voip_partner_makes_voip_devices_ineligible() -> None:
    policy = policy_with(eligibility={"certified_voip_partner": False})
    quote = evaluate(PHONE, [contract()], policy, DAY)
    assert not quote.eligible
    assert quote.fee is None
    assert list(failed(quote)) == [RULE_VOIP_PARTNER]
    assert "only extended to Certified VoIP Partners" in failed(quote)[RULE_VOIP_PARTNER]
    assert any("195.00 USD" in note and "repair/RMA" in note for note in quote.notes)
    trio = PHONE.model_copy(update={"model": "Trio 8800"})
    assert RULE_VOIP_PARTNER in failed(evaluate(trio, [contract()], policy, DAY))
    video = evaluate(CAMERA, [contract()], policy, DAY)
    assert video.eligible
    assert "not a VoIP product group" in video.rule(RULE_VOIP_PARTNER).reason


def test_a_model_exclusion_gives_its_reason() -> None:
    analog = Device(serial="SS2-0001", model="SoundStation 2", site="hq-berlin")
    covering = contract(serials=frozenset({"SS2-0001"}))
    quote = evaluate(analog, [covering], default_policy(), DAY)
    assert list(failed(quote)) == [RULE_MODEL]
    assert "analog conference phone" in failed(quote)[RULE_MODEL]
    policy = load_policy(FIXTURES / "history.toml")
    hdx = CAMERA.model_copy(update={"model": "HDX 8000", "site": "hq"})
    reason = failed(evaluate(hdx, [contract()], policy, DAY))[RULE_MODEL]
    assert (
        reason == "model 'HDX 8000' is excluded (eligibility.excluded_models 'HDX*'): end of life"
    )
    gs = CAMERA.model_copy(update={"model": "Group Series 300", "site": "hq"})
    assert "'re:^Group Series 3'" in failed(evaluate(gs, [contract()], policy, DAY))[RULE_MODEL]
    gs500 = gs.model_copy(update={"model": "Group Series 500"})
    assert evaluate(gs500, [contract()], policy, DAY).eligible


def test_a_feature_exclusion() -> None:
    policy = load_policy(FIXTURES / "history.toml")
    camera = CAMERA.model_copy(update={"site": "hq"})
    quote = evaluate(camera, [contract()], policy, DAY, feature="software_update")
    assert list(failed(quote)) == [RULE_FEATURE]
    assert "feature 'software_update' is excluded" in failed(quote)[RULE_FEATURE]
    assert evaluate(camera, [contract()], policy, DAY, feature="multipoint").eligible


def test_region_and_country_exclusions() -> None:
    policy = load_policy(FIXTURES / "history.toml")
    tokyo = CAMERA.model_copy(update={"site": "tokyo"})
    quote = evaluate(tokyo, [contract()], policy, DAY)
    assert list(failed(quote)) == [RULE_REGION]
    assert "region apac, excluded" in failed(quote)[RULE_REGION]
    assert quote.sla_country == "JP"
    zurich = CAMERA.model_copy(update={"site": "zurich"})
    assert (
        "country CH, excluded" in failed(evaluate(zurich, [contract()], policy, DAY))[RULE_REGION]
    )
    # the site's own record (Site table) wins over the policy's map
    hq = CAMERA.model_copy(update={"site": "hq"})
    assert evaluate(hq, [contract()], policy, DAY).eligible
    quote = evaluate(hq, [contract()], policy, DAY, "CH")
    assert list(failed(quote)) == [RULE_REGION]
    quote = evaluate(hq, [contract()], policy, DAY, site_region="Apac")
    assert list(failed(quote)) == [RULE_REGION]


def test_an_expired_contract_does_not_cover() -> None:
    lapsed = contract(start=date(2025, 1, 1), end=date(2025, 12, 31))
    quote = evaluate(PHONE, [lapsed], default_policy(), DAY)
    assert set(failed(quote)) == {RULE_CONTRACT, RULE_FEE}
    assert (
        "C-1 (extended-reactivation, by serial) ended on 2025-12-31" in failed(quote)[RULE_CONTRACT]
    )
    assert quote.contract is None
    assert quote.fee is None
    assert failed(quote)[RULE_FEE] == "no applicable contract"
    # the last day of a contract still counts; a contract not yet started does not
    assert evaluate(PHONE, [lapsed], default_policy(), date(2025, 12, 31)).eligible
    future = contract(start=date(2027, 1, 1), end=date(2027, 12, 31))
    reason = failed(evaluate(PHONE, [future], default_policy(), DAY))[RULE_CONTRACT]
    assert "starts on 2027-01-01" in reason


def test_no_contract_at_all() -> None:
    other = contract(serials=frozenset({"SOMEONE-ELSE"}))
    quote = evaluate(PHONE, [other], default_policy(), DAY)
    reason = failed(quote)[RULE_CONTRACT]
    assert (
        reason
        == "no contract or warranty covers serial 0004F2AABB01 or product group soundpoint-ip"
    )


def test_contract_kinds_that_do_not_cover_reactivation() -> None:
    policy = load_policy(FIXTURES / "history.toml")  # only extended-reactivation covers
    camera = CAMERA.model_copy(update={"site": "hq"})
    support = contract(kind=ContractKind.SUPPORT)
    reason = failed(evaluate(camera, [support], policy, DAY))[RULE_CONTRACT]
    assert "C-1 (support, by serial) does not cover re-activation under this policy" in reason
    assert evaluate(camera, [support], default_policy(), DAY).eligible  # the default counts it


def test_a_contract_by_product_group_covers_and_one_by_serial_is_preferred() -> None:
    by_group = contract("G-1", serials=frozenset(), product_groups={ProductGroup.SOUNDPOINT_IP})
    quote = evaluate(PHONE, [by_group], default_policy(), DAY)
    assert quote.eligible
    assert quote.contract == "G-1"
    assert "by product group soundpoint-ip" in quote.rule(RULE_CONTRACT).reason
    assert RULE_CONTRACT in failed(evaluate(CAMERA, [by_group], default_policy(), DAY))
    by_serial = contract("S-1", end=date(2026, 12, 1))
    assert evaluate(PHONE, [by_group, by_serial], default_policy(), DAY).contract == "S-1"
    support = contract("A-1", kind=ContractKind.SUPPORT, end=date(2030, 1, 1))
    chosen = evaluate(PHONE, [support, by_group, by_serial], default_policy(), DAY)
    assert chosen.contract == "S-1"  # the Extended Reactivation Service over a support contract


def test_a_regional_contract_covers_only_its_region() -> None:
    emea = contract(region="EMEA")
    assert evaluate(PHONE, [emea], default_policy(), DAY).eligible  # hq-berlin is emea
    elsewhere = PHONE.model_copy(update={"site": "somewhere"})
    reason = failed(evaluate(elsewhere, [emea], default_policy(), DAY))[RULE_CONTRACT]
    assert "limited to region EMEA, the device is in a site with no known region" in reason


def test_per_term_and_per_device_pricing() -> None:
    per_device = evaluate(PHONE, [contract()], default_policy(), DAY)
    per_term = evaluate(PHONE, [contract(pricing=Pricing.PER_TERM)], default_policy(), DAY)
    assert (per_device.pricing, per_device.fee) == (Pricing.PER_DEVICE, Decimal("49.00"))
    assert (per_term.pricing, per_term.fee) == (Pricing.PER_TERM, Decimal("990.00"))
    reason = per_term.rule(RULE_FEE).reason
    assert "990.00 USD per contract term of C-1 (2026-01-01..2026-12-31)" in reason
    assert "shared by every device" in reason


def test_the_fee_in_force_on_the_quote_date_is_used() -> None:
    policy = load_policy(FIXTURES / "history.toml")
    phone = PHONE.model_copy(update={"site": "hq"})
    camera = CAMERA.model_copy(update={"site": "hq"})
    early = contract(start=date(2024, 1, 1), end=date(2030, 1, 1))
    assert evaluate(camera, [early], policy, date(2026, 6, 30)).fee == Decimal("120.00")
    quote = evaluate(camera, [early], policy, date(2024, 12, 31))
    assert list(failed(quote)) == [RULE_FEE]
    assert "no per-device reactivation fee in force on 2024-12-31" in failed(quote)[RULE_FEE]
    assert quote.currency == "EUR"
    assert evaluate(phone, [early], policy, date(2020, 1, 1)).ppi_fee == Decimal("195.00")
    assert evaluate(camera, [early], policy, date(2020, 1, 1)).ppi_fee == Decimal("175.50")
    assert evaluate(camera, [early], policy, date(2019, 12, 31)).ppi_fee == Decimal("150.00")


def test_an_unknown_model_has_no_product_group() -> None:
    toaster = Device(serial="T-1", model="Toaster 3000", site="hq-berlin")
    quote = evaluate(toaster, [contract(serials=frozenset({"T-1"}))], default_policy(), DAY)
    assert list(failed(quote)) == [RULE_PRODUCT_GROUP]
    assert "matches no product group" in failed(quote)[RULE_PRODUCT_GROUP]
    assert quote.ppi_fee is None


@pytest.mark.parametrize(
    ("site", "country", "due"),
    [
        ("hq-berlin", None, date(2026, 11, 27)),  # DE: no Thanksgiving
        ("unknown-site", None, date(2026, 11, 30)),  # default US: Thanksgiving skipped
        ("hq-berlin", "US", date(2026, 11, 30)),  # the site record's country wins
    ],
)
def test_sla_due_date_uses_the_site_country(site: str, country: str | None, due: date) -> None:
    device = PHONE.model_copy(update={"site": site})
    quote = evaluate(device, [contract()], default_policy(), date(2026, 11, 25), country)
    assert quote.sla_due == due


def test_an_unknown_site_country_falls_back_to_the_default_with_a_note() -> None:
    quote = evaluate(PHONE, [contract()], default_policy(), date(2026, 11, 25), "XX")
    assert quote.sla_country == "US"
    assert quote.sla_due == date(2026, 11, 30)
    assert [h.name for h in quote.sla_holidays] == ["Thanksgiving Day"]
    assert any("No holiday calendar for country 'XX'" in note for note in quote.notes)
