"""A driver shipped by someone else: polyfleet finds it through its entry point alone.

It reads identity over SNMP (MIB-II sysName as serial) and reports no licenses; it exists to
show that a separate distribution can add a driver without touching polyfleet's code, and that
the registry picks it for its models without an inventory row naming it.
"""

from __future__ import annotations

from device_drivers.base import Capability, DeviceDriver
from device_drivers.errors import MalformedReply, NotSupported
from device_drivers.models import ApplyResult, DeviceFacts, LicenseStatus

SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYS_DESCR = "1.3.6.1.2.1.1.1.0"


class LabPhoneDriver(DeviceDriver):
    """Identity from MIB-II only; no license operations."""

    name = "example-lab-phone"
    families = frozenset({"lab-phone"})
    models = frozenset({"LabPhone 100", "LabPhone 200"})
    """Not in polyfleet's catalogue: the registry finds this driver for them by this list."""
    capabilities = frozenset({Capability.IDENTIFY})

    async def identify(self) -> DeviceFacts:
        if self.ctx.snmp is None:
            raise NotSupported("needs SNMP", serial=self.ctx.device.serial)
        values = await self.ctx.snmp.get(self.ctx.snmp_target(), [SYS_NAME, SYS_DESCR])
        name = values.get(SYS_NAME)
        if not isinstance(name, str) or not name:
            raise MalformedReply("sysName is empty", serial=self.ctx.device.serial)
        descr = values.get(SYS_DESCR)
        return DeviceFacts(serial=name, model=descr if isinstance(descr, str) else None)

    async def read_licenses(self) -> list[LicenseStatus]:
        raise NotSupported("lab phones have no licenses", serial=self.ctx.device.serial)

    async def apply_activation(self, feature: str, key: str) -> ApplyResult:
        raise NotSupported("lab phones have no licenses", serial=self.ctx.device.serial)
