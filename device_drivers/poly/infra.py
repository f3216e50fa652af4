"""`poly-infra`: RealPresence DMA and Resource Manager / Clariti.

SNMP gives the model and, without REST credentials, a coarse license state (DMA stLic table,
RPRM license capability) [R]; the REST license resources give the serial, per-feature state and
the install path where HTTP credentials exist. Install and restart are modeled (`infra_modeled`).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from device_drivers import identity_oids as oids
from device_drivers.base import Capability, feature_status
from device_drivers.context import DriverContext
from device_drivers.errors import DeviceTimeout, NotSupported
from device_drivers.models import ApplyResult, DeviceFacts, LicenseStatus
from device_drivers.names import DriverName
from device_drivers.poly import infra_modeled as modeled
from device_drivers.poly._common import (
    SnmpIdentityMixin,
    check_http_status,
    device_op,
    rejected,
)
from device_drivers.poly.parsing import (
    facts,
    get_ci,
    parse_sys_descr,
    require_mapping,
    text_field,
)
from device_drivers.transports import HttpReply
from inventory.catalog import family_for_model, family_for_sys_object_id
from inventory.models import DevicePorts

DEFAULT_USER = "admin"
REST_PORT = 8443
"""DMA and RPRM serve their REST API on 8443 (`https://<host>:8443/api/rest/...`, Clariti API
docs); an inventory record with its own HTTPS port overrides it."""


class PolyInfraDriver(SnmpIdentityMixin):
    """DMA / RPRM: REST where HTTP credentials exist, SNMP otherwise."""

    name: ClassVar[str] = DriverName.POLY_INFRA.value
    families: ClassVar[frozenset[str]] = frozenset({"dma", "rprm"})
    default_ports: ClassVar[DevicePorts] = DevicePorts(https=REST_PORT)
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    modeled_calls = modeled.MODELED_CALLS

    def __init__(self, context: DriverContext) -> None:
        super().__init__(context)
        self._lock = asyncio.Lock()
        self._family: str | None = None

    async def _rest(self, method: str, path: str, body: Any = None) -> HttpReply:
        target = self.ctx.http_target(default_user=DEFAULT_USER, default_port=REST_PORT)
        async with self._lock:
            return await self._http().request(target, method, path, json=body)

    async def _rest_json(self, path: str) -> Any:
        reply = await self._rest("GET", path)
        check_http_status(reply.status, f"GET {path}")
        return reply.json()

    def _known_family(self) -> str | None:
        if self._family is None and self.ctx.device.model:
            family = family_for_model(self.ctx.device.model)
            self._family = family.key if family is not None else None
        return self._family

    @device_op
    async def identify(self) -> DeviceFacts:
        # REST first where it is configured: a rejected login must read as bad credentials, and
        # SNMP v2c answers a wrong community with silence (a timeout).
        serial = version = None
        if self.has_http_credentials():
            serial, version = modeled.parse_poly_license_serial(
                await self._rest_json(modeled.POLY_LICENSE_PATH)
            )
        elif not self.has_snmp():
            raise NotSupported("no HTTP credentials and no SNMP access to read the identity")
        model = firmware = system_name = None
        if self.has_snmp():
            ident = await self.snmp_identity(endpoint_mib=False)
            model, firmware = parse_sys_descr(ident.sys_descr)
            system_name = ident.sys_name
            family = family_for_sys_object_id(ident.sys_object_id or "") or (
                family_for_model(model) if model else None
            )
            self._family = family.key if family is not None else self._family
        # Without REST no public object carries the serial: keep the inventory's (README).
        return facts(
            serial=serial or self.ctx.device.serial,
            mac=None,  # neither the license REST resources nor these MIBs carry it
            model=model or self.ctx.device.model,
            firmware=firmware or version,
            system_name=system_name,
            what="DMA/RPRM identity",
        )

    async def _rest_licenses(self) -> modeled.InfraLicenseStatus:
        return modeled.parse_license_status(await self._rest_json(modeled.LICENSE_STATUS_PATH))

    async def _snmp_licenses(self) -> list[LicenseStatus]:
        family = self._known_family()
        if family != "rprm":
            target = self.ctx.snmp_target()
            names = await self._snmp().walk(target, oids.ST_LIC_CLUSTER_NAME)
            if names or family == "dma":
                states = await self._snmp().walk(target, oids.ST_LIC_LICENSE_STATUS)
                return modeled.dma_licenses(names, states)
        values = await self.snmp_get(oids.SERVICE_LICENSE_CAPABILITY)
        return [modeled.rprm_license(values[oids.SERVICE_LICENSE_CAPABILITY])]

    def license_call(self) -> tuple[str, bool]:
        """REST (modeled path) with HTTP credentials, else the documented SNMP license objects."""
        if self.has_http_credentials():
            return f"GET {modeled.LICENSE_STATUS_PATH}", True
        return (
            f"SNMP stLicLicenseStatus {oids.ST_LIC_LICENSE_STATUS} / serviceLicenseCapability"
            f" {oids.SERVICE_LICENSE_CAPABILITY}",
            False,
        )

    @device_op
    async def read_licenses(self) -> list[LicenseStatus]:
        if self.has_http_credentials():
            return (await self._rest_licenses()).features
        if self.has_snmp():
            return await self._snmp_licenses()
        raise NotSupported("no HTTP credentials and no SNMP access to read licenses")

    @device_op
    async def apply_activation(self, feature: str, key: str) -> ApplyResult:
        if not self.has_http_credentials():
            raise NotSupported("installing a license needs the REST API (HTTP credentials)")
        body = modeled.install_body(self.ctx.device.serial, key)
        reply = await self._rest("POST", modeled.INSTALL_PATH, body)
        if reply.status == 400:
            answer = require_mapping(reply.json(), "license install")
            raise rejected(feature, text_field(answer, "errorCode") or "refused")
        check_http_status(reply.status, f"POST {modeled.INSTALL_PATH}")
        status = str(get_ci(require_mapping(reply.json(), "license install"), "licensingStatus"))
        restarted = False
        if status.upper() == modeled.RESTART_REQUIRED:
            reply = await self._rest("POST", modeled.RESTART_PATH)
            check_http_status(reply.status, f"POST {modeled.RESTART_PATH}")
            restarted = True

            async def settled() -> modeled.InfraLicenseStatus | None:
                current = await self._rest_licenses()
                return None if current.licensing_status == modeled.RESTART_REQUIRED else current

            if await self.poll(settled) is None:
                raise DeviceTimeout("system did not come back from its restart in time")
        licenses = await self.read_licenses()
        after = feature_status(licenses, feature, self.ctx.device.serial)
        return ApplyResult(
            feature=feature,
            applied=True,
            state=after.state,
            expires_at=after.expires_at,
            detail="license installed" + (", system restarted" if restarted else ""),
            licenses=licenses,
        )
