"""In-memory fakes of the transport Protocols (no sockets) and a driver context for them, for
the driver tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from device_drivers.context import DriverContext, Timeouts
from device_drivers.transports import HttpReply, HttpTarget, SnmpScalar, SnmpTarget
from inventory.models import CredentialProfile, Device

Handler = Callable[[str, str, Mapping[str, str]], HttpReply]


def reply(status: int, body: Any = None, cookies: Mapping[str, str] | None = None) -> HttpReply:
    return HttpReply(
        status=status, headers={}, body=json.dumps(body).encode(), cookies=cookies or {}
    )


@dataclass
class FakeHttp:
    """Answers through `handler(method, path, cookies)`; records every call."""

    handler: Handler
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def request(
        self,
        target: HttpTarget,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> HttpReply:
        self.calls.append((method, path))
        return self.handler(method, path, cookies or {})

    async def close(self) -> None:
        return None


@dataclass
class FakeSnmp:
    values: dict[str, SnmpScalar]
    walked: list[tuple[SnmpTarget, str]] = field(default_factory=list)
    """Every walk asked for: (target, base OID)."""

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpScalar]:
        return {oid: self.values.get(oid) for oid in oids}

    async def walk(self, target: SnmpTarget, base_oid: str) -> list[tuple[str, SnmpScalar]]:
        self.walked.append((target, base_oid))
        return [
            (oid, v) for oid, v in sorted(self.values.items()) if oid.startswith(base_oid + ".")
        ]

    async def close(self) -> None:
        return None


def ctx(**kwargs: Any) -> DriverContext:
    creds = CredentialProfile(
        name="t", http_user="admin", http_password="pw", snmp_community="public"
    )
    return DriverContext(
        device=Device(serial="SER1", host="192.0.2.10"),
        credentials=creds,
        timeouts=Timeouts(http=0.1),
        **kwargs,
    )


SYSTEM = {"serialNumber": "8L1", "model": "StudioX50", "softwareVersion": "4.0.1"}


def uc_phone(license_path: str, license_body: Any) -> FakeHttp:
    def handler(method: str, path: str, cookies: Mapping[str, str]) -> HttpReply:
        if path == "/api/v1/mgmt/device/info":
            return reply(
                200,
                {
                    "data": {"ModelNumber": "VVX 411", "MACAddress": "0004f2000011"},
                    "Status": "2000",
                },
            )
        if path == license_path:
            return reply(200, {"data": license_body, "Status": "2000"})
        return reply(404, {})

    return FakeHttp(handler)
