"""The VideoOS driver's control flow against in-memory fakes (no sockets): the re-login rule,
the MAC from SNMP."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from device_drivers.errors import DeviceBusy
from device_drivers.poly.videoos import PolyVideoOsDriver
from device_drivers.transports import HttpReply
from tests.unit.device_drivers.fakes import SYSTEM, FakeHttp, FakeSnmp, ctx, reply


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
