"""`polycom-gs`: Group Series / HDX over the SSH command API, with POLYCOM-ENDPOINT-MIB help.

The login banner is the `whoami` block (Model, Software Version, Serial Number) [R]; the MAC comes
from SNMP `hardwareNICNICsMAC` [R] when SNMP is configured. Without SSH credentials, identity
falls back to SNMP `identityDeviceSerialNumber`. Option keys are modeled (`group_series_modeled`).
"""

from __future__ import annotations

import asyncio
import logging
from types import ModuleType
from typing import ClassVar

from device_drivers.base import Capability
from device_drivers.context import DriverContext
from device_drivers.errors import DeviceBusy, DeviceConnectionError, DeviceError, NotSupported
from device_drivers.models import ApplyResult, DeviceFacts, LicenseStatus
from device_drivers.names import DriverName
from device_drivers.poly import group_series_modeled as modeled
from device_drivers.poly._common import SnmpIdentityMixin, device_op, rejected
from device_drivers.poly.parsing import (
    facts,
    facts_from_whoami,
    gs_reply_complete,
    parse_whoami,
    raise_for_gs_error,
)
from device_drivers.transports import SshSession

log = logging.getLogger(__name__)

PACING_S = 0.2
"""~200 ms between commands [R: manualslib Group Series p.109; AVI-SPL commandsCooldownDelay]."""


class PolycomGsDriver(SnmpIdentityMixin):
    """Group Series / HDX: one SSH API session per driver instance, one command at a time."""

    name: ClassVar[str] = DriverName.POLYCOM_GS.value
    families: ClassVar[frozenset[str]] = frozenset({"gs"})
    probe_order: ClassVar[int | None] = 30  # SSH `whoami`: the slowest probe, last
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    modeled_calls = modeled.MODELED_CALLS
    params_model = modeled.Params
    params: modeled.Params
    modeled: ClassVar[ModuleType] = modeled
    """The module of modeled calls: a plugin subclass may replace it outright."""

    def __init__(self, context: DriverContext) -> None:
        super().__init__(context)
        self._lock = asyncio.Lock()
        self._session: SshSession | None = None

    def abilities(self) -> frozenset[Capability]:
        """Without an SSH login only identity over SNMP: option keys need the command API."""
        if self.has_ssh_credentials():
            return self.capabilities
        return frozenset({Capability.IDENTIFY}) if self.has_snmp() else frozenset()

    def _reply_complete(self, text: str) -> bool:
        """Documented terminators, error lines and the `whoami` block end, or the modeled one."""
        return gs_reply_complete(text) or bool(self.modeled.reply_complete(text, self.params))

    def license_call(self) -> tuple[str, bool]:
        return f"SSH `{self.params.list_command}`", True

    async def _open(self) -> SshSession:
        if self._session is None:
            if not self.has_ssh_credentials():  # e.g. a codec found and identified over SNMP
                raise NotSupported(
                    "the Group Series API needs an SSH login; the credential profile has none"
                )
            target = self.ctx.ssh_target(
                prompt=self.params.prompt or None, pacing=PACING_S, complete=self._reply_complete
            )
            self._session = await self._ssh().open(target)
        return self._session

    async def _command(self, line: str) -> str:
        """One command on the (lazily opened) session; a dropped session is reopened next time."""
        async with self._lock:
            session = await self._open()
            try:
                return await session.command(line)
            except DeviceConnectionError:
                self._session = None
                raise

    @device_op
    async def identify(self) -> DeviceFacts:
        if self.has_ssh_credentials() or not self.has_snmp():
            async with self._lock:
                banner = (await self._open()).banner
            if "Serial Number" not in parse_whoami(banner):
                banner = await self._command("whoami")
                raise_for_gs_error(banner, "whoami")
            found = facts_from_whoami(banner)
        else:  # no SSH login: SNMP-only abilities (identity; option keys need the API)
            ident = await self.snmp_identity()
            found = facts(
                serial=ident.serial,
                mac=None,
                model=ident.model,
                firmware=ident.software,
                system_name=ident.sys_name,
                what="POLYCOM-ENDPOINT-MIB identity",
            )
        mac = await self.snmp_mac()
        return found.model_copy(update={"mac": mac}) if mac else found

    @device_op
    async def read_licenses(self) -> list[LicenseStatus]:
        command = self.params.list_command
        reply = await self._command(command)
        raise_for_gs_error(reply, command)
        licenses: list[LicenseStatus] = self.modeled.parse_option_list(reply, self.params)
        return licenses

    @device_op
    async def apply_activation(self, feature: str, key: str) -> ApplyResult:
        try:
            command: str = self.modeled.apply_command(key, self.params)
        except ValueError as exc:
            raise rejected(feature, f"malformed key: {exc}") from None
        reply = await self._command(command)
        parsed: tuple[LicenseStatus | None, str | None] = self.modeled.parse_apply_reply(reply)
        status, error = parsed
        if error is not None:
            if "busy" in error.lower():
                raise DeviceBusy(f"optionkey apply: {error}")
            raise rejected(feature, error)
        if status is None or status.feature != feature:
            status = await self.verify(feature)
        return ApplyResult(
            feature=feature,
            applied=True,
            state=status.state,
            expires_at=status.expires_at,
            detail="option key loaded",
        )

    async def close(self) -> None:
        """End the API session (the device has a small session table)."""
        session, self._session = self._session, None
        if session is None:
            return
        try:
            await session.close()
        except DeviceError as exc:
            log.debug("%s: closing the SSH session failed (%s)", self.ctx.device.serial, exc.kind)
