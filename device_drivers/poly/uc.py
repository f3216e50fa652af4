"""`poly-uc`: VVX / SoundPoint IP / Trio / SoundStation IP / CCX phones over the UC REST API.

Identity comes from the documented `device/info`; licenses and activation use the modeled calls
in `uc_modeled` (license file on the provisioning server + documented `updateConfiguration`).
One request at a time per phone: older firmware freezes under concurrent calls.
"""

from __future__ import annotations

import asyncio
import time
from types import ModuleType
from typing import Any, ClassVar

from device_drivers.base import Capability
from device_drivers.context import DriverContext
from device_drivers.errors import DeviceError, DeviceTimeout
from device_drivers.models import ApplyResult, DeviceFacts, LicenseStatus
from device_drivers.names import DriverName
from device_drivers.poly import uc_modeled
from device_drivers.poly._common import (
    PolyDriver,
    check_http_status,
    device_op,
    rejected,
)
from device_drivers.poly.parsing import parse_uc_device_info, parse_uc_prov_server, uc_data
from device_drivers.transports import TrustPolicy
from inventory.models import LicenseState

DEVICE_INFO_PATH = "/api/v1/mgmt/device/info"
NETWORK_INFO_PATH = "/api/v1/mgmt/network/info"
DEFAULT_USER = "Polycom"
"""The phones' REST user [R: poly-device-apis.md 1.1]."""
FRESH_READ_S = 1.0
"""How long a license read, with no other request to the phone since, stands for the phone's
state before an apply (the workflow looks whether the feature is active right before it)."""


class PolyUcDriver(PolyDriver):
    """UC phones: Basic auth as `Polycom`, `{"data", "Status"}` envelopes, Status 4001 = busy."""

    name: ClassVar[str] = DriverName.POLY_UC.value
    families: ClassVar[frozenset[str]] = frozenset({"vvx", "trio", "ccx"})
    probe_order: ClassVar[int | None] = 10  # UC REST `device/info` (ARCHITECTURE.md)
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    modeled_calls = uc_modeled.MODELED_CALLS
    params_model = uc_modeled.Params
    params: uc_modeled.Params
    modeled: ClassVar[ModuleType] = uc_modeled
    """The module of modeled calls: a plugin subclass may replace it outright (see the example
    plugin in tests/plugins), keeping the documented reads of this driver."""

    def __init__(self, context: DriverContext) -> None:
        super().__init__(context)
        self._lock = asyncio.Lock()
        self._facts: DeviceFacts | None = None
        self._last_read: tuple[float, uc_modeled.LicenseInfo] | None = None

    async def _call(self, method: str, path: str) -> Any:
        """One REST call, serialised per phone; returns the envelope's `data`."""
        self._last_read = None  # anything asked of the phone may have changed it
        target = self.ctx.http_target(default_user=DEFAULT_USER)
        async with self._lock:
            reply = await self._http().request(target, method, path)
        check_http_status(reply.status, f"{method} {path}", busy_on_403=True)
        return uc_data(reply.json(), f"{method} {path}")

    @device_op
    async def identify(self) -> DeviceFacts:
        self._facts = parse_uc_device_info(await self._call("GET", DEVICE_INFO_PATH))
        return self._facts

    def license_call(self) -> tuple[str, bool]:
        return f"GET {self.params.license_info_path}", True

    async def _license_info(self) -> uc_modeled.LicenseInfo:
        path = self.params.license_info_path
        info: uc_modeled.LicenseInfo = self.modeled.parse_license_info(
            await self._call("GET", path), self.params
        )
        self._last_read = (time.monotonic(), info)
        return info

    async def _license_info_before_apply(self) -> uc_modeled.LicenseInfo:
        """The licenses as the phone reported them last, if that read was the last request to
        the phone and is under FRESH_READ_S old (the workflow's look right before applying);
        else read now. Used once: the apply changes the phone."""
        last, self._last_read = self._last_read, None
        if last is not None and time.monotonic() - last[0] < FRESH_READ_S:
            return last[1]
        return await self._license_info()

    activation_reads = True

    @device_op
    async def read_for_activation(self) -> str:
        """The provisioning server the license file would go to (documented network/info)."""
        prov = parse_uc_prov_server(await self._call("GET", NETWORK_INFO_PATH))
        return f"provisioning server {prov}"

    @device_op
    async def read_licenses(self) -> list[LicenseStatus]:
        return (await self._license_info()).features

    @device_op
    async def apply_activation(self, feature: str, key: str) -> ApplyResult:
        facts = self._facts or await self.identify()
        if facts.mac is None:  # parse_uc_device_info guarantees a MAC; keep mypy honest
            raise DeviceError("phone reported no MAC address")
        before_info = await self._license_info_before_apply()
        before = before_info.last_update
        was = next((s for s in before_info.features if s.feature == feature), None)
        prov = parse_uc_prov_server(await self._call("GET", NETWORK_INFO_PATH))
        trust = TrustPolicy(
            ca_bundle=self.ctx.ca_bundle, insecure=self.ctx.insecure, pin_on_first_use=False
        )
        license_file = self.modeled.LicenseFile(
            self._http(), prov, facts.mac, request_timeout_s=self.ctx.timeouts.http, trust=trust
        )
        async with self._lock:
            previous = await license_file.keys()
            await license_file.write(self.modeled.merge_keys(previous, key))
        await self._call("POST", self.modeled.UPDATE_CONFIGURATION_PATH)

        async def changed() -> uc_modeled.LicenseInfo | None:
            info = await self._license_info()
            return info if info.last_update not in (None, before) else None

        info = await self.poll(changed)
        if info is None or info.last_update is None:
            raise DeviceTimeout("phone did not report loading its license file in time")
        update = info.last_update
        status = next((s for s in info.features if s.feature == feature), None)
        renewed = (
            status is not None
            and status.state is LicenseState.ACTIVE
            and (was is None or (was.state, was.expires_at) != (status.state, status.expires_at))
        )
        if update.result == "rejected" and not renewed:
            # Take the refused key off the server, or every later re-provisioning retries it.
            async with self._lock:
                await license_file.write(previous)
            raise rejected(feature, update.reason or "rejected")
        if update.result not in ("loaded", "unchanged", "rejected"):
            detail = f"{update.result} {update.reason or ''}".strip()
            raise DeviceError(f"phone could not load its license file: {detail}")
        if status is None:
            raise rejected(feature, f"key loaded for {update.feature or 'another feature'}")
        return ApplyResult(
            feature=feature,
            applied=status.state is LicenseState.ACTIVE,
            state=status.state,
            expires_at=status.expires_at,
            detail=f"license file {update.result}",
            licenses=info.features,
        )
