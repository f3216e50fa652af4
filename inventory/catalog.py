"""Poly product catalogue shared by the inventory, the drivers and the simulator.

The simulator is the device side and must not import the drivers it tests; what both sides need
to agree on (product groups from the seed documents, model names, Poly's IEEE OUIs, the
enterprise number) lives here, as plain constants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

POLYCOM_ENTERPRISE_OID = "1.3.6.1.4.1.13885"
"""`polycom MODULE-IDENTITY ::= { enterprises 13885 }` (POLYCOM-BASE-MIB)."""

POLY_OUIS: frozenset[str] = frozenset({"0004f2", "64167f", "482567"})
"""Poly / Polycom OUIs as listed in Wireshark's manuf database (the `manuf` package)."""


class ProductGroup(StrEnum):
    """The product groups of Poly's pay-per-incident fee table (seed document)."""

    SOUNDSTATION = "soundstation"
    SOUNDPOINT_PRO = "soundpoint-pro"
    VOICESTATION = "voicestation"
    SOUNDSTATION_IP = "soundstation-ip"
    SOUNDPOINT_IP = "soundpoint-ip"
    VIDEO = "video"
    NETWORK = "network"


PRODUCT_GROUP_TITLES: dict[ProductGroup, str] = {
    ProductGroup.SOUNDSTATION: "SoundStation Series",
    ProductGroup.SOUNDPOINT_PRO: "SoundPoint Pro Series",
    ProductGroup.VOICESTATION: "VoiceStation",
    ProductGroup.SOUNDSTATION_IP: "SoundStation IP (VoIP)",
    ProductGroup.SOUNDPOINT_IP: "SoundPoint IP (VoIP)",
    ProductGroup.VIDEO: "Video Products",
    ProductGroup.NETWORK: "Network Products",
}


@dataclass(frozen=True, slots=True)
class ModelFamily:
    """A family of models that share a product group and a simulator personality. Which driver
    serves it is the drivers' say (their `families`), answered by the driver registry."""

    key: str
    models: tuple[str, ...]
    product_group: ProductGroup
    networked: bool = True
    mac_is_serial: bool = False
    """UC phones report their MAC as their serial number, so an import may key them by MAC."""
    aliases: tuple[str, ...] = ()
    """Further model strings devices and datasheets use, recognised but never simulated
    (`models` is what the simulator picks from, so a simulated fleet stays as it was)."""


MODEL_FAMILIES: tuple[ModelFamily, ...] = (
    ModelFamily(
        "vvx",
        (
            "VVX 250",
            "VVX 350",
            "VVX 450",
            "VVX 501",
            "VVX 601",
            "SoundPoint IP 335",
            "SoundPoint IP 550",
        ),
        ProductGroup.SOUNDPOINT_IP,
        mac_is_serial=True,
        aliases=(
            "VVX 101",
            "VVX 150",
            "VVX 201",
            "VVX 300",
            "VVX 301",
            "VVX 310",
            "VVX 311",
            "VVX 400",
            "VVX 401",
            "VVX 410",
            "VVX 411",
            "VVX 500",
            "VVX 600",
            "VVX 1500",
            "VVX D60",
            "VVX D230",
            "SoundPoint IP 301",
            "SoundPoint IP 320",
            "SoundPoint IP 321",
            "SoundPoint IP 330",
            "SoundPoint IP 331",
            "SoundPoint IP 430",
            "SoundPoint IP 450",
            "SoundPoint IP 501",
            "SoundPoint IP 560",
            "SoundPoint IP 601",
            "SoundPoint IP 650",
            "SoundPoint IP 670",
            "SPIP 335",
            "SPIP 550",
        ),
    ),
    ModelFamily(
        "trio",
        ("Trio 8300", "Trio 8500", "Trio 8800", "SoundStation IP 5000", "SoundStation IP 6000"),
        ProductGroup.SOUNDSTATION_IP,
        mac_is_serial=True,
        aliases=(
            "Trio C60",
            "Trio Visual+",
            "Trio VisualPro",
            "RealPresence Trio 8800",
            "RealPresence Trio 8500",
            "SoundStation IP 4000",
            "SoundStation IP 7000",
            "SSIP 5000",
            "SSIP 6000",
            "SSIP 7000",
        ),
    ),
    ModelFamily(
        "ccx",
        ("CCX 400", "CCX 500", "CCX 600", "Edge E320", "Edge E450"),
        ProductGroup.SOUNDPOINT_IP,
        mac_is_serial=True,
        aliases=(
            "CCX 350",
            "CCX 505",
            "CCX 700",
            "Edge E100",
            "Edge E220",
            "Edge E300",
            "Edge E350",
            "Edge E400",
            "Edge E500",
            "Edge E550",
            "Edge B10",
            "Edge B20",
            "Edge B30",
        ),
    ),
    ModelFamily(
        "studiox",
        ("Studio X30", "Studio X50", "Studio X70", "G7500"),
        ProductGroup.VIDEO,
        aliases=("Studio X52", "Studio X72", "Studio G62", "StudioX30", "StudioX50", "StudioX70"),
    ),
    ModelFamily(
        "gs",
        ("Group Series 300", "Group Series 500", "Group Series 700", "HDX 7000", "HDX 8000"),
        ProductGroup.VIDEO,
        aliases=(
            "Group Series 310",
            "Group Series 550",
            "Group300",
            "Group310",
            "Group500",
            "Group550",
            "Group700",
            "RealPresence Group 300",
            "RealPresence Group 310",
            "RealPresence Group 500",
            "RealPresence Group 550",
            "RealPresence Group 700",
            "HDX 4000",
            "HDX 4500",
            "HDX 6000",
            "HDX 9000",
            "HDX 9001",
            "HDX 9002",
            "HDX 9004",
            "HDX 9006",
        ),
    ),
    ModelFamily(
        "dma",
        ("RealPresence DMA 7000",),
        ProductGroup.NETWORK,
        aliases=("RealPresence DMA", "DMA 7000", "DMA Virtual Edition", "RealPresence DMA VE"),
    ),
    ModelFamily(
        "rprm",
        ("RealPresence Resource Manager", "Clariti Manager"),
        ProductGroup.NETWORK,
        aliases=("RPRM", "Clariti", "RealPresence Resource Manager Virtual Edition"),
    ),
    ModelFamily(
        "analog",
        ("SoundStation 2", "SoundPoint Pro SE-225", "VoiceStation 300"),
        ProductGroup.SOUNDSTATION,
        networked=False,
        aliases=(
            "SoundStation 2W",
            "SoundStation EX",
            "SoundStation Premier",
            "SoundPoint Pro SE-220",
            "VoiceStation 500",
        ),
    ),
)

_ANALOG_GROUPS: tuple[tuple[str, ProductGroup], ...] = (
    ("soundpoint pro", ProductGroup.SOUNDPOINT_PRO),
    ("voicestation", ProductGroup.VOICESTATION),
    ("soundstation", ProductGroup.SOUNDSTATION),
)


def squash_model(text: str) -> str:
    """A model name as compared: lower case, letters and digits only (`VVX-450` = `vvx 450`)."""
    return re.sub(r"[^a-z0-9]+", "", text.lower())


_MODEL_INDEX: dict[str, ModelFamily] = dict(
    sorted(
        (
            (squash_model(model), family)
            for family in MODEL_FAMILIES
            for model in (*family.models, *family.aliases)
        ),
        key=lambda item: -len(item[0]),  # longest first: "VVX 1500" before "VVX 150"
    )
)


def family_for_model(model: str) -> ModelFamily | None:
    """Return the family of a model name, tolerant of case, spaces and dashes (`VVX-450`)."""
    squashed = squash_model(model)
    if squashed in _MODEL_INDEX:
        return _MODEL_INDEX[squashed]
    # Model strings from devices carry prefixes/suffixes ("Polycom VVX 450", "VVX_450").
    for key, family in _MODEL_INDEX.items():
        if key and key in squashed:
            return family
    return None


def unknown_model_warning(model: str) -> str:
    """What to tell a user whose device reports a model the catalogue does not know."""
    return (
        f"model {model!r} is not in polyfleet's catalogue: it has no product group, so quotes and"
        " eligibility cannot place it. Map it in a policy file: add it to the `models` of a"
        f' [[product_groups]] entry (e.g. models = ["{model}"]) and point `policy = "FILE"` in'
        " the config file at it"
    )


def product_group_for_model(model: str) -> ProductGroup | None:
    """The seed's product group of a model; analog models are split by their own name."""
    family = family_for_model(model)
    if family is None:
        return None
    if family.product_group is ProductGroup.SOUNDSTATION:
        lowered = model.lower()
        for needle, group in _ANALOG_GROUPS:
            if needle in lowered:
                return group
    return family.product_group


MODELED_SYS_OBJECT_ID_BRANCH = f"{POLYCOM_ENTERPRISE_OID}.9999"
"""MODELED: no public source gives Poly's sysObjectID values, so the simulator answers, and the
drivers recognise, a branch of our own under enterprise 13885 (`.9999.<class>.<family>`). Shared
here so the device side (simulator) and the detecting side (device_drivers) cannot drift apart;
verify on real hardware before trusting it."""

MODELED_SYS_OBJECT_IDS: dict[str, str] = {
    "vvx": f"{MODELED_SYS_OBJECT_ID_BRANCH}.1.1",
    "trio": f"{MODELED_SYS_OBJECT_ID_BRANCH}.1.2",
    "ccx": f"{MODELED_SYS_OBJECT_ID_BRANCH}.1.3",
    "studiox": f"{MODELED_SYS_OBJECT_ID_BRANCH}.2.1",
    "gs": f"{MODELED_SYS_OBJECT_ID_BRANCH}.2.2",
    "dma": f"{MODELED_SYS_OBJECT_ID_BRANCH}.3.1",
    "rprm": f"{MODELED_SYS_OBJECT_ID_BRANCH}.3.2",
}
"""MODELED sysObjectID (dotted) per family key (see `MODELED_SYS_OBJECT_ID_BRANCH`)."""

FAMILIES_BY_KEY: dict[str, ModelFamily] = {family.key: family for family in MODEL_FAMILIES}


def family_for_sys_object_id(sys_object_id: str) -> ModelFamily | None:
    """The family a (modeled) sysObjectID names, tolerant of a leading dot; None if unknown."""
    wanted = sys_object_id.strip().lstrip(".")
    for key, value in MODELED_SYS_OBJECT_IDS.items():
        if value == wanted:
            return FAMILIES_BY_KEY[key]
    return None
