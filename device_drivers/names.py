"""Names of the built-in drivers (their entry points in the `polyfleet.drivers` group).

Kept apart from the drivers so that code which only compares a stored driver name (health's
"is this device networked") does not import any driver. Which driver serves which model is
not written here: each driver declares it, and the registry answers.
"""

from __future__ import annotations

from enum import StrEnum


class DriverName(StrEnum):
    """Names of the built-in drivers."""

    POLY_UC = "poly-uc"
    POLY_VIDEOOS = "poly-videoos"
    POLYCOM_GS = "polycom-gs"
    POLY_INFRA = "poly-infra"
    ANALOG = "analog"
    SNMP_GENERIC = "snmp-generic"
