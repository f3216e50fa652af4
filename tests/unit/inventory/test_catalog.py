"""The model catalogue: the spellings devices and datasheets use map to family and product group."""

from __future__ import annotations

import pytest

from inventory.catalog import (
    MODEL_FAMILIES,
    ProductGroup,
    family_for_model,
    product_group_for_model,
    unknown_model_warning,
)


@pytest.mark.parametrize(
    ("model", "family", "group"),
    [
        ("VVX 411", "vvx", ProductGroup.SOUNDPOINT_IP),
        ("VVX_411", "vvx", ProductGroup.SOUNDPOINT_IP),
        ("Polycom VVX 1500", "vvx", ProductGroup.SOUNDPOINT_IP),
        ("SoundPoint IP 650", "vvx", ProductGroup.SOUNDPOINT_IP),
        ("SoundStation IP 7000", "trio", ProductGroup.SOUNDSTATION_IP),
        ("RealPresence Trio 8800", "trio", ProductGroup.SOUNDSTATION_IP),
        ("Trio C60", "trio", ProductGroup.SOUNDSTATION_IP),
        ("CCX 505", "ccx", ProductGroup.SOUNDPOINT_IP),
        ("Edge E350", "ccx", ProductGroup.SOUNDPOINT_IP),
        ("RealPresence Group 500", "gs", ProductGroup.VIDEO),
        ("Group500", "gs", ProductGroup.VIDEO),
        ("Group Series 310", "gs", ProductGroup.VIDEO),
        ("HDX 9006", "gs", ProductGroup.VIDEO),
        ("StudioX30", "studiox", ProductGroup.VIDEO),
        ("Studio X52", "studiox", ProductGroup.VIDEO),
        ("G7500", "studiox", ProductGroup.VIDEO),
        ("DMA 7000", "dma", ProductGroup.NETWORK),
        ("RPRM", "rprm", ProductGroup.NETWORK),
        ("Clariti Manager", "rprm", ProductGroup.NETWORK),
        ("SoundStation 2W", "analog", ProductGroup.SOUNDSTATION),
        ("VoiceStation 500", "analog", ProductGroup.VOICESTATION),
    ],
)
def test_public_model_strings_map_to_family_and_product_group(
    model: str, family: str, group: ProductGroup
) -> None:
    found = family_for_model(model)
    assert found is not None
    assert found.key == family
    assert product_group_for_model(model) is group


def test_aliases_are_never_simulated_and_never_shadow_a_longer_model() -> None:
    simulated = {m for f in MODEL_FAMILIES for m in f.models}
    assert "RealPresence Group 500" not in simulated  # the simulated fleet stays as it was
    found = family_for_model("Polycom VVX 1500 D")
    assert found is not None
    assert found.key == "vvx"


def test_an_unknown_model_is_none_and_the_warning_says_how_to_map_it() -> None:
    assert family_for_model("SoundStructure C16") is None
    warning = unknown_model_warning("SoundStructure C16")
    assert "'SoundStructure C16' is not in polyfleet's catalogue" in warning
    assert '[[product_groups]] entry (e.g. models = ["SoundStructure C16"])' in warning
