"""`snmp-generic`: identity of anything that answers SNMP, when no richer driver fits.

MIB-II sysDescr / sysObjectID / sysName [R], plus POLYCOM-ENDPOINT-MIB identity where the agent
has it [R]. There is no generic way to read or install licenses, so those raise NotSupported.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar, NoReturn

from device_drivers.base import Capability
from device_drivers.errors import NotSupported
from device_drivers.models import ApplyResult, DeviceFacts, LicenseStatus
from device_drivers.names import DriverName
from device_drivers.poly._common import SnmpIdentityMixin, device_op
from device_drivers.poly.parsing import facts, parse_sys_descr
from inventory.catalog import (
    MODELED_SYS_OBJECT_ID_BRANCH,
    family_for_sys_object_id,
)

IDENTITY_ONLY = "snmp-generic reads identity only (no generic license interface exists)"


class SnmpGenericDriver(SnmpIdentityMixin):
    """Identity over SNMP; serial from POLYCOM-ENDPOINT-MIB, else the inventory's."""

    name: ClassVar[str] = DriverName.SNMP_GENERIC.value
    families: ClassVar[frozenset[str]] = frozenset()
    fallback: ClassVar[bool] = True
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.IDENTIFY})
    modeled_calls = MappingProxyType(
        {
            "identify": (
                f"family from sysObjectID under {MODELED_SYS_OBJECT_ID_BRANCH} (modeled table in"
                " inventory.catalog); model from sysDescr 'Polycom <model>, software <version>'"
                " (modeled format)"
            ),
        }
    )

    @device_op
    async def identify(self) -> DeviceFacts:
        ident = await self.snmp_identity()
        family = family_for_sys_object_id(ident.sys_object_id or "")
        descr_model, descr_software = parse_sys_descr(ident.sys_descr)
        found = facts(
            serial=ident.serial or self.ctx.device.serial,
            mac=None,
            model=ident.model or descr_model,
            firmware=ident.software or descr_software,
            system_name=ident.sys_name,
            what="SNMP identity",
        )
        if found.product_group is None and family is not None:
            found = found.model_copy(update={"product_group": family.product_group})
        mac = await self.snmp_mac()
        return found.model_copy(update={"mac": mac}) if mac else found

    def license_call(self) -> tuple[str, bool]:
        return "none: snmp-generic has no license interface", False

    def _refuse(self) -> NoReturn:
        raise NotSupported(IDENTITY_ONLY, serial=self.ctx.device.serial)

    async def read_licenses(self) -> list[LicenseStatus]:
        self._refuse()

    async def apply_activation(self, feature: str, key: str) -> ApplyResult:
        self._refuse()

    async def verify(self, feature: str) -> LicenseStatus:
        self._refuse()
