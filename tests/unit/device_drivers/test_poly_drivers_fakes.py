"""Driver control flow against in-memory fakes of the transport Protocols (no sockets): the
VideoOS re-login rule, the bounded UC activation poll, the GS SNMP fallback, error context."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from device_drivers.context import DriverContext, Timeouts
from device_drivers.errors import DeviceBusy, DeviceTimeout, NotSupported
from device_drivers.modeled_settings import ModeledSettingsError, configure, reset
from device_drivers.poly.group_series import PolycomGsDriver
from device_drivers.poly.uc import PolyUcDriver
from device_drivers.poly.videoos import PolyVideoOsDriver
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

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpScalar]:
        return {oid: self.values.get(oid) for oid in oids}

    async def walk(self, target: SnmpTarget, base_oid: str) -> list[tuple[str, SnmpScalar]]:
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


async def test_videoos_logs_in_again_once_on_403_then_reports_busy() -> None:
    logins = 0
    answers = iter([403, 200, 403, 403])

    def handler(method: str, path: str, cookies: Mapping[str, str]) -> HttpReply:
        nonlocal logins
        if path == "/rest/current/session" and method == "POST":
            logins += 1
            return reply(200, {}, {"session_id": f"s{logins}", "XSRF-TOKEN": "x"})
        if method == "DELETE":
            return reply(204)
        return reply(next(answers), SYSTEM)

    http = FakeHttp(handler)
    driver = PolyVideoOsDriver(ctx(http=http))
    facts = await driver.identify()  # 403 -> fresh login -> 200
    assert (facts.serial, logins) == ("8L1", 2)
    with pytest.raises(DeviceBusy) as caught:
        await driver.identify()  # 403 -> fresh login -> 403 again
    assert caught.value.serial == "SER1"
    assert caught.value.host == "192.0.2.10"
    assert logins == 3
    await driver.close()
    assert http.calls[-1] == ("DELETE", "/rest/current/session")


async def test_videoos_mac_comes_from_snmp_when_configured() -> None:
    def handler(method: str, path: str, cookies: Mapping[str, str]) -> HttpReply:
        if method == "POST":
            return reply(200, {"session": {"sessionId": "abc"}})
        return reply(200, SYSTEM)

    nic = "1.3.6.1.4.1.13885.101.1.3.10.2.1.3.1"
    driver = PolyVideoOsDriver(
        ctx(http=FakeHttp(handler), snmp=FakeSnmp({nic: "00:04:F2:01:02:03"}))
    )
    assert (await driver.identify()).mac == "0004f2010203"


async def test_uc_activation_poll_is_bounded_when_the_phone_never_reports() -> None:
    def handler(method: str, path: str, cookies: Mapping[str, str]) -> HttpReply:
        data: Any = None
        if path.endswith("/device/info"):
            data = {
                "ModelNumber": "VVX 450",
                "FirmwareRelease": "6.4",
                "MACAddress": "0004f2aabbcc",
            }
        elif path.endswith("/network/info"):
            data = {"ProvServerAddress": "http://prov.example.com/site"}
        elif path.endswith("/license/info"):
            data = {"Features": [], "LastUpdate": None}
        if method == "PUT":
            return reply(201)
        if path.endswith("-license.cfg"):
            return HttpReply(status=404, headers={}, body=b"")
        return reply(200, {"data": data, "Status": "2000"} if data else {"Status": "2000"})

    http = FakeHttp(handler)
    driver = PolyUcDriver(ctx(http=http))
    driver.poll_attempts, driver.poll_interval_s = 3, 0.01  # type: ignore[misc]
    with pytest.raises(DeviceTimeout, match="license file"):
        await driver.apply_activation("uc_features", "PFK1-0004F2AABBCC-uc_features-2027-X")
    polls = [c for c in http.calls if c == ("GET", "/api/v1/mgmt/license/info")]
    assert len(polls) == 1 + 3  # the "before" read, then exactly the bounded polls
    assert ("PUT", "/site/0004f2aabbcc-license.cfg") in http.calls


async def test_gs_identity_falls_back_to_snmp_without_ssh_credentials() -> None:
    ep = "1.3.6.1.4.1.13885.101.1"
    snmp = FakeSnmp(
        {
            f"{ep}.1.5.0": "82XYZ",
            f"{ep}.1.4.0": "HDX 8000",
            f"{ep}.1.1.0": "3.1.14-8711",
            f"{ep}.3.10.2.1.3.1": "00:04:f2:0a:0b:0c",
            "1.3.6.1.2.1.1.5.0": "room-1",
        }
    )
    facts = await PolycomGsDriver(ctx(snmp=snmp)).identify()
    assert (facts.serial, facts.model, facts.firmware, facts.mac) == (
        "82XYZ",
        "HDX 8000",
        "3.1.14-8711",
        "0004f20a0b0c",
    )
    with pytest.raises(NotSupported, match="SSH"):
        await PolycomGsDriver(ctx()).identify()


# -- modeled parameters and modules a site can change -----------------------------------------


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


async def test_uc_license_route_and_field_names_come_from_the_modeled_parameters() -> None:
    http = uc_phone("/site/licenses", {"Options": [{"Name": "video", "Status": "active"}]})
    settings = {
        "license_info_path": "/site/licenses",
        "features_field": "Options",
        "feature_field": "Name",
        "state_field": "Status",
    }
    driver = PolyUcDriver(ctx(http=http, modeled=settings))
    assert driver.license_call() == ("GET /site/licenses", True)
    [status] = await driver.read_licenses()
    assert (status.feature, status.state.value) == ("video", "active")
    default = PolyUcDriver(ctx(http=http))
    with pytest.raises(NotSupported, match="license/info: HTTP 404"):
        await default.read_licenses()  # the default route is what the simulator answers


def test_an_invalid_modeled_parameter_is_refused_naming_the_driver_and_key() -> None:
    with pytest.raises(ModeledSettingsError, match=r"\[drivers.polycom-gs\] apply_command"):
        configure(
            {"polycom-gs": {"apply_command": "optionkey apply"}},
            {"polycom-gs": PolycomGsDriver.params_model},
        )
    with pytest.raises(ModeledSettingsError, match=r"\[drivers.poly-uc\] license_path: Extra"):
        configure({"poly-uc": {"license_path": "/x"}}, {"poly-uc": PolyUcDriver.params_model})
    with pytest.raises(ModeledSettingsError, match=r"\[drivers.no-such\]: no driver"):
        configure({"no-such": {}}, {"poly-uc": PolyUcDriver.params_model})


async def test_configured_values_are_in_force_for_drivers_without_explicit_ones() -> None:
    configure(
        {"poly-videoos": {"options_path": "/rest/site/options"}},
        {"poly-videoos": PolyVideoOsDriver.params_model},
    )
    try:
        assert PolyVideoOsDriver.params_in_force() == {"options_path": "/rest/site/options"}
        driver = PolyVideoOsDriver(ctx())
        assert driver.license_call() == ("GET /rest/site/options", True)
    finally:
        reset()
    assert PolyVideoOsDriver.params_in_force() == {"options_path": "/rest/system/options"}


async def test_a_plugin_replaces_the_modeled_module_and_keeps_the_documented_reads() -> None:
    from polyfleet_example_driver.site_uc import SiteUcDriver

    body = [{"name": "video", "status": "expired", "validUntil": "2026-01-31T00:00:00Z"}]
    http = uc_phone("/api/v2/mgmt/licenses", body)
    driver = SiteUcDriver(ctx(http=http))
    facts = await driver.identify()  # poly-uc's documented device/info
    assert (facts.model, facts.mac) == ("VVX 411", "0004f2000011")
    [status] = await driver.read_licenses()
    assert (status.feature, status.state.value) == ("video", "expired")
    assert driver.license_call() == ("GET /api/v2/mgmt/licenses", True)
