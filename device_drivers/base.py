"""The driver plugin interface: one subclass per device family, found through entry points.

A driver speaks for one device at a time (it is built with that device's DriverContext). The
four operations are the whole contract; an operation a family cannot do raises NotSupported,
and `modeled_calls` names the operations whose device interface no public Poly source
documents, so a site with real hardware knows what to verify.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar, Self

from device_drivers.context import DriverContext
from device_drivers.errors import MalformedReply, NotSupported
from device_drivers.modeled_settings import ModeledParams, configured
from device_drivers.models import ApplyResult, DeviceFacts, LicenseStatus
from inventory.models import DevicePorts


class Capability(StrEnum):
    """What a driver can do."""

    IDENTIFY = "identify"
    READ_LICENSES = "read_licenses"
    APPLY_ACTIVATION = "apply_activation"
    VERIFY = "verify"


class DeviceDriver(ABC):
    """Base class of every driver; subclasses set the class attributes and the operations."""

    name: ClassVar[str]
    families: ClassVar[frozenset[str]]
    """Catalogue family keys (`inventory.catalog`) this driver serves, e.g. {"vvx", "trio"}."""
    models: ClassVar[frozenset[str]] = frozenset()
    """Model names served that no catalogue family holds (a third-party product line);
    matched tolerant of case, spaces and dashes like the catalogue's."""
    default_ports: ClassVar[DevicePorts] = DevicePorts()
    """Where this driver's devices listen when not on the standard ports (161, 443, 22)."""
    probe_order: ClassVar[int | None] = None
    """Rank among the drivers discovery tries on an address SNMP could not place (lowest
    first); None: tried only when SNMP identity names one of its families."""
    fallback: ClassVar[bool] = False
    """Serves a Poly device no other driver claims (identity only): `snmp-generic`."""
    capabilities: ClassVar[frozenset[Capability]]
    modeled_calls: ClassVar[Mapping[str, str]] = {}
    """Operation name → how it is modeled (device interface not in any public Poly source)."""
    params_model: ClassVar[type[ModeledParams]] = ModeledParams
    """Modeled parameters a site may set under `[drivers.<name>]` (defaults: the simulator's)."""

    def __init__(self, context: DriverContext) -> None:
        self.ctx = context
        given = context.modeled if context.modeled is not None else configured(self.name)
        self.params: ModeledParams = self.params_model.model_validate(dict(given))
        """The modeled parameters in force for this device."""

    @classmethod
    def params_in_force(cls) -> dict[str, Any]:
        """The modeled parameters the config file sets, over the defaults (`drivers list`)."""
        return cls.params_model.model_validate(dict(configured(cls.name))).model_dump()

    @abstractmethod
    async def identify(self) -> DeviceFacts:
        """Serial, MAC, model, firmware and product group as the device reports them."""

    @abstractmethod
    async def read_licenses(self) -> list[LicenseStatus]:
        """Per-feature license state and expiry."""

    @abstractmethod
    async def apply_activation(self, feature: str, key: str) -> ApplyResult:
        """Install an activation key for `feature`; raises ActivationRejected with the reason."""

    activation_reads: ClassVar[bool] = False
    """Whether `apply_activation` starts with reads worth probing (`read_for_activation`)."""

    async def read_for_activation(self) -> str:
        """Run the read-only calls `apply_activation` starts with; say what they found."""
        raise NotSupported(f"{self.name} reads nothing before an activation")

    def abilities(self) -> frozenset[Capability]:
        """What this instance can do with the access it was given (a subset of capabilities)."""
        return self.capabilities

    def license_call(self) -> tuple[str, bool]:
        """(call, modeled): the call `read_licenses` makes on this device, named in scan results
        and by `probe` so a failed read says what to check on the device."""
        described = self.modeled_calls.get("read_licenses")
        if described:
            return described.removesuffix(" (modeled)"), "(modeled)" in described
        return f"{self.name} read_licenses", False

    async def verify(self, feature: str) -> LicenseStatus:
        """One feature's license state as the device reports it now: the re-activation's look
        before it applies. After applying, the workflow verifies from `ApplyResult.licenses` or
        else `read_licenses`, the read it also keeps, so this is not asked a second time."""
        return feature_status(await self.read_licenses(), feature, self.ctx.device.serial)

    async def close(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Release per-device sessions (e.g. log out of VideoOS). Shared clients stay open."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Leaving the block (normally, on error or on cancellation) releases the sessions."""
        await self.close()


def feature_status(licenses: list[LicenseStatus], feature: str, serial: str) -> LicenseStatus:
    """`feature`'s entry of the licenses a device reported; MalformedReply if it has none."""
    for status in licenses:
        if status.feature == feature:
            return status
    raise MalformedReply(f"device does not report feature {feature!r}", serial=serial)
