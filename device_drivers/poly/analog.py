"""`analog`: SoundStation, SoundPoint Pro and VoiceStation conference phones.

They have no network interface, so the inventory holds them for quotes and contracts only; every
remote operation says so instead of trying (and timing out) on an address they never had.
"""

from __future__ import annotations

from typing import ClassVar, NoReturn

from device_drivers.base import Capability, DeviceDriver
from device_drivers.errors import NotSupported
from device_drivers.models import ApplyResult, DeviceFacts, LicenseStatus
from device_drivers.names import DriverName

NOT_NETWORKED = "device is not networked (analog): inventory and quote only"


class AnalogDriver(DeviceDriver):
    """Analog conference phones: no remote operations at all."""

    name: ClassVar[str] = DriverName.ANALOG.value
    families: ClassVar[frozenset[str]] = frozenset({"analog"})
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def _refuse(self) -> NoReturn:
        raise NotSupported(NOT_NETWORKED, serial=self.ctx.device.serial)

    async def identify(self) -> DeviceFacts:
        self._refuse()

    async def read_licenses(self) -> list[LicenseStatus]:
        self._refuse()

    async def apply_activation(self, feature: str, key: str) -> ApplyResult:
        self._refuse()

    async def verify(self, feature: str) -> LicenseStatus:
        self._refuse()
