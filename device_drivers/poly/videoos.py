"""`poly-videoos`: Studio X / G7500 over the VideoOS REST API with a session login.

Login, the `session_id` cookie, the XSRF token echoed in `x-xsrf-token`, 403 = re-login and
`/rest/system` follow poly-device-apis.md 2.1 [R]; option keys are modeled (`videoos_modeled`).
Sessions left open lock the device's web UI up, so `close()` always logs out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from types import ModuleType
from typing import Any, ClassVar

from device_drivers.base import Capability
from device_drivers.context import DriverContext
from device_drivers.errors import AuthenticationFailed, DeviceBusy, DeviceError
from device_drivers.models import ApplyResult, DeviceFacts, LicenseStatus
from device_drivers.names import DriverName
from device_drivers.poly import videoos_modeled
from device_drivers.poly._common import (
    SnmpIdentityMixin,
    check_http_status,
    device_op,
    rejected,
)
from device_drivers.poly.parsing import parse_videoos_system, videoos_session_id
from device_drivers.transports import HttpReply, HttpTarget

log = logging.getLogger(__name__)

SESSION_PATH = "/rest/current/session"
SYSTEM_PATH = "/rest/system"
DEFAULT_USER = "admin"
XSRF_COOKIE = "XSRF-TOKEN"
SESSION_COOKIE = "session_id"


class PolyVideoOsDriver(SnmpIdentityMixin):
    """VideoOS systems: one session per driver instance, re-login once on 403, then busy."""

    name: ClassVar[str] = DriverName.POLY_VIDEOOS.value
    families: ClassVar[frozenset[str]] = frozenset({"studiox"})
    probe_order: ClassVar[int | None] = 20  # VideoOS `/rest/system`, after UC REST
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    modeled_calls = videoos_modeled.MODELED_CALLS
    params_model = videoos_modeled.Params
    params: videoos_modeled.Params
    modeled: ClassVar[ModuleType] = videoos_modeled
    """The module of modeled calls: a plugin subclass may replace it outright."""

    def __init__(self, context: DriverContext) -> None:
        super().__init__(context)
        self._lock = asyncio.Lock()
        self._session: tuple[str, str] | None = None

    def _target(self) -> HttpTarget:
        # The session cookie authenticates; no Basic header (whether devices accept it is [I]).
        return dataclasses.replace(self.ctx.http_target(default_user=DEFAULT_USER), auth=None)

    async def _login(self) -> tuple[str, str]:
        target = self._target()
        body = {"user": target.user or DEFAULT_USER, "password": target.password or ""}
        reply = await self._http().request(target, "POST", SESSION_PATH, json=body)
        if reply.status in (401, 403):
            raise AuthenticationFailed(f"session login refused (HTTP {reply.status})")
        check_http_status(reply.status, f"POST {SESSION_PATH}")
        session_id = reply.cookies.get(SESSION_COOKIE) or videoos_session_id(reply.json())
        self._session = (session_id, reply.cookies.get(XSRF_COOKIE, ""))
        return self._session

    async def _send(self, method: str, path: str, body: Any, session: tuple[str, str]) -> HttpReply:
        session_id, xsrf = session
        cookies = {SESSION_COOKIE: session_id}
        headers: dict[str, str] = {}
        if xsrf:
            cookies[XSRF_COOKIE] = xsrf
            headers["x-xsrf-token"] = xsrf
        return await self._http().request(
            self._target(), method, path, json=body, headers=headers, cookies=cookies
        )

    async def _request(self, method: str, path: str, body: Any = None) -> HttpReply:
        """A call inside the session: on 403 log in again once; a second 403 means busy."""
        async with self._lock:
            session = self._session or await self._login()
            reply = await self._send(method, path, body, session)
            if reply.status == 403:
                reply = await self._send(method, path, body, await self._login())
                if reply.status == 403:
                    raise DeviceBusy(f"{method} {path}: HTTP 403 again after a fresh login")
            return reply

    async def _get_json(self, path: str) -> Any:
        reply = await self._request("GET", path)
        check_http_status(reply.status, f"GET {path}")
        return reply.json()

    @device_op
    async def identify(self) -> DeviceFacts:
        facts = parse_videoos_system(await self._get_json(SYSTEM_PATH))
        mac = await self.snmp_mac()
        return facts.model_copy(update={"mac": mac}) if mac else facts

    def license_call(self) -> tuple[str, bool]:
        return f"GET {self.params.options_path}", True

    @device_op
    async def read_licenses(self) -> list[LicenseStatus]:
        options: list[LicenseStatus] = self.modeled.parse_options(
            await self._get_json(self.params.options_path)
        )
        return options

    @device_op
    async def apply_activation(self, feature: str, key: str) -> ApplyResult:
        reply = await self._request("POST", self.params.options_path, self.modeled.option_body(key))
        if reply.status != 400:
            check_http_status(reply.status, f"POST {self.params.options_path}")
        parsed: tuple[LicenseStatus | None, str | None] = self.modeled.parse_apply(reply.json())
        option, reason = parsed
        if reason is not None:
            raise rejected(feature, reason)
        if option is None or option.feature != feature:
            option = await self.verify(feature)
        return ApplyResult(
            feature=feature,
            applied=True,
            state=option.state,
            expires_at=option.expires_at,
            detail=option.detail,
        )

    async def close(self) -> None:
        """Log out (`DELETE /rest/current/session`); a failure here only gets logged."""
        if self._session is None or self.ctx.http is None:
            return
        session, self._session = self._session, None
        try:
            await self._send("DELETE", SESSION_PATH, None, session)
        except DeviceError as exc:
            log.debug("%s: logout failed (%s)", self.ctx.device.serial, exc.kind)
