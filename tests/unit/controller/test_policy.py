"""The policy file: the shipped default, fee tables with effective dates, and clear errors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from controller.policy import (
    DEFAULT_SOURCE,
    PolicyError,
    default_policy,
    load_policy,
    parse_policy,
    pattern_matches,
)
from inventory.catalog import ProductGroup
from inventory.models import ContractKind, Device, Pricing

FIXTURES = Path(__file__).parents[2] / "fixtures" / "policy"
SEED_PPI = {
    ProductGroup.SOUNDSTATION: (date(2007, 5, 15), "35.00"),
    ProductGroup.SOUNDPOINT_PRO: (date(2007, 5, 15), "35.00"),
    ProductGroup.VOICESTATION: (date(2007, 5, 15), "35.00"),
    ProductGroup.SOUNDSTATION_IP: (date(2007, 8, 23), "195.00"),
    ProductGroup.SOUNDPOINT_IP: (date(2007, 8, 23), "195.00"),
    ProductGroup.VIDEO: (date(2008, 11, 3), "150.00"),
    ProductGroup.NETWORK: (date(2008, 11, 3), "300.00"),
}


def test_the_default_policy_holds_the_seed_fee_table() -> None:
    policy = load_policy(None)
    assert policy is default_policy()
    assert policy.source == DEFAULT_SOURCE
    assert policy.currency == "USD"
    assert policy.sla.business_days == 2
    table = {fee.product_group: (fee.effective, str(fee.amount)) for fee in policy.ppi_fees}
    assert table == SEED_PPI
    assert all(isinstance(fee.amount, Decimal) for fee in policy.ppi_fees)
    assert {fee.pricing for fee in policy.reactivation_fees} == {
        Pricing.PER_DEVICE,
        Pricing.PER_TERM,
    }
    assert any("repair/RMA" in note for note in policy.notes)
    assert any("EXAMPLE" in note for note in policy.notes)
    assert ContractKind.EXTENDED_REACTIVATION in policy.eligibility.covering_kinds


def test_the_default_policy_declares_no_model_without_licensed_features() -> None:
    """`polyfleet health` without a policy file skips loading the default for its
    `[licensing] no_licensed_features` because it is empty: declaring one here would need
    health_cmd to load the default again."""
    assert default_policy().licensing.no_licensed_features == []


@pytest.mark.parametrize(("group", "first"), [(g, d) for g, (d, _) in SEED_PPI.items()])
def test_seed_fees_are_in_force_from_their_effective_date_on(
    group: ProductGroup, first: date
) -> None:
    policy = default_policy()
    assert policy.ppi_fee(group, date.fromordinal(first.toordinal() - 1)) is None
    in_force = policy.ppi_fee(group, first)
    assert in_force is not None
    assert str(in_force.amount) == SEED_PPI[group][1]
    assert policy.ppi_fee(group, date(2026, 11, 23)) == in_force


def test_a_later_fee_supersedes_an_earlier_one_from_its_effective_date() -> None:
    policy = load_policy(FIXTURES / "history.toml")
    assert policy.source == str(FIXTURES / "history.toml")
    before = policy.ppi_fee(ProductGroup.VIDEO, date(2019, 12, 31))
    after = policy.ppi_fee(ProductGroup.VIDEO, date(2020, 1, 1))
    assert before is not None
    assert after is not None
    assert (before.amount, after.amount) == (Decimal("150.00"), Decimal("175.50"))
    phones = policy.ppi_fee(ProductGroup.SOUNDPOINT_IP, date(2020, 1, 1))
    assert phones is not None
    assert str(phones.amount) == "195.00"  # an integer in the file still has 2 places


def test_reactivation_fee_by_basis_date_and_group() -> None:
    policy = load_policy(FIXTURES / "history.toml")
    phone, video = ProductGroup.SOUNDPOINT_IP, ProductGroup.VIDEO
    assert policy.reactivation_fee(Pricing.PER_DEVICE, phone, date(2024, 12, 31)) is None
    fee = policy.reactivation_fee(Pricing.PER_DEVICE, phone, date(2026, 6, 30))
    assert fee is not None
    assert fee.amount == Decimal("40.00")
    fee = policy.reactivation_fee(Pricing.PER_DEVICE, phone, date(2026, 7, 1))
    assert fee is not None
    assert fee.amount == Decimal("45.00")
    fee = policy.reactivation_fee(Pricing.PER_DEVICE, video, date(2026, 7, 1))
    assert fee is not None
    assert fee.amount == Decimal("120.00")  # the group's own fee wins over the generic one
    fee = policy.reactivation_fee(Pricing.PER_TERM, video, date(2026, 7, 1))
    assert fee is not None
    assert (fee.amount, str(fee.amount)) == (Decimal("1200"), "1200.00")


@pytest.mark.parametrize(
    ("model", "group", "how"),
    [
        ("VVX 450", ProductGroup.SOUNDPOINT_IP, "'VVX*'"),
        ("Polycom VVX 450", ProductGroup.SOUNDPOINT_IP, "'VVX*'"),
        ("trio 8800", ProductGroup.SOUNDSTATION_IP, "'Trio*'"),
        ("SoundStation IP 6000", ProductGroup.SOUNDSTATION_IP, "'SoundStation IP*'"),
        ("SoundStation 2", ProductGroup.SOUNDSTATION, "'SoundStation*'"),
        ("SoundPoint Pro SE-225", ProductGroup.SOUNDPOINT_PRO, "'SoundPoint Pro*'"),
        ("RealPresence DMA 7000", ProductGroup.NETWORK, "'RealPresence DMA*'"),
        ("Group Series 500", ProductGroup.VIDEO, "'Group Series*'"),
    ],
)
def test_default_product_group_patterns(model: str, group: ProductGroup, how: str) -> None:
    found, reason = default_policy().product_group_for(Device(serial="S1", model=model))
    assert found is group
    assert how in reason


def test_product_group_falls_back_to_the_inventory_then_the_catalogue() -> None:
    policy = load_policy(FIXTURES / "history.toml")  # knows only video and VVX patterns
    found, reason = policy.product_group_for(Device(serial="S1", model="Group Series 500"))
    assert (found, "re:^Group Series" in reason) == (ProductGroup.VIDEO, True)
    recorded = Device(serial="S2", model="Trio 8800", product_group=ProductGroup.SOUNDPOINT_IP)
    assert policy.product_group_for(recorded)[0] is ProductGroup.SOUNDPOINT_IP
    found, reason = policy.product_group_for(Device(serial="S3", model="Trio 8800"))
    assert found is ProductGroup.SOUNDSTATION_IP
    assert "catalogue" in reason
    assert policy.product_group_for(Device(serial="S4", model="Toaster 3000"))[0] is None
    assert policy.product_group_for(Device(serial="S5"))[0] is None


def test_patterns_are_globs_or_regexes_ignoring_case() -> None:
    assert pattern_matches("vvx*", "VVX 450")
    assert not pattern_matches("VVX", "VVX 450")  # a glob matches the whole name
    assert pattern_matches("re:vvx", "Poly VVX 450")  # a regex is searched
    assert not pattern_matches("re:^Trio", "VVX 450")


def test_sites_map_countries_and_regions() -> None:
    policy = load_policy(FIXTURES / "history.toml")
    assert policy.country_for("tokyo") == "JP"
    assert policy.country_for("TOKYO") == "JP"
    assert policy.country_for("elsewhere") == "US"
    assert policy.country_for(None) == "US"
    info = policy.site_info("zurich")
    assert info is not None
    assert info.region == "emea"
    assert default_policy().country_for("branch-munich") == "DE-BY"


def test_a_missing_file_is_named() -> None:
    with pytest.raises(PolicyError, match=r"cannot read policy file .*nope\.toml: no such file"):
        load_policy(FIXTURES / "nope.toml")


def test_broken_toml_names_the_file_and_the_line() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(FIXTURES / "broken_syntax.toml")
    assert "broken_syntax.toml is not valid TOML" in str(caught.value)
    assert "line 2" in str(caught.value)


def test_an_unknown_key_is_named_with_its_section() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(FIXTURES / "unknown_key.toml")
    message = str(caught.value)
    assert "unknown_key.toml" in message
    assert "'eligibility.certified_partner': unknown key" in message


def test_an_amount_with_fractions_of_a_cent_names_the_entry() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(FIXTURES / "bad_amount.toml")
    message = str(caught.value)
    assert "bad_amount.toml" in message
    assert "'ppi_fees[#2].amount'" in message
    assert "decimal places" in message


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('[sla]\ndefault_country = "XX"', "sla.default_country", "holidays library"),
        ('[sla]\ndefault_country = "DE-XX"', "sla.default_country", "no subdivision"),
        ("[sla]\nbusiness_days = -1", "sla.business_days", "greater than or equal"),
        ('currency = "usd"', "currency", "should match pattern"),
        ('[eligibility]\nexcluded_models = ["re:("]', "eligibility.excluded_models[#1]", "regular"),
        ('[[product_groups]]\nid = "phones"', "product_groups[#1].id", "soundpoint-ip"),
        ("[eligibility]\ncovering_kinds = []", "eligibility.covering_kinds", "at least one"),
        ('[[ppi_fees]]\nproduct_group = "video"\namount = 1', "ppi_fees[#1].effective", "missing"),
        (
            '[[ppi_fees]]\nproduct_group = "video"\neffective = 2008-11-03\namount = -1',
            "ppi_fees[#1].amount",
            "greater than or equal to 0",
        ),
        ("version = 2", "version", "1"),
    ],
)
def test_invalid_values_name_the_key(text: str, key: str, words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "my-policy.toml")
    message = str(caught.value)
    assert message.startswith("invalid policy file my-policy.toml: ")
    assert key in message
    assert words in message


def test_a_fee_given_twice_for_the_same_date_is_refused() -> None:
    entry = '[[ppi_fees]]\nproduct_group = "video"\neffective = 2008-11-03\namount = 150.00\n'
    with pytest.raises(PolicyError, match=r"ppi_fees\[#2\]: a second video fee effective 2008"):
        parse_policy(entry + entry, "dup.toml")


def test_an_empty_file_is_a_valid_policy_with_defaults() -> None:
    policy = parse_policy("", "empty.toml")
    assert policy.sla.business_days == 2
    assert policy.ppi_fees == []
    assert policy.eligibility.covering_kinds == [ContractKind.EXTENDED_REACTIVATION]
