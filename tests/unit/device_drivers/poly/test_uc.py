"""The UC driver's control flow against in-memory fakes (no sockets): the bounded activation poll,
the license route and fields from modeled parameters, a plugin replacing its modeled module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from device_drivers.errors import DeviceTimeout, NotSupported
from device_drivers.poly import uc
from device_drivers.poly.uc import PolyUcDriver
from device_drivers.transports import HttpReply
from tests.unit.device_drivers.fakes import FakeHttp, ctx, reply, uc_phone


def never_loading_phone(features: list[dict[str, str]]) -> FakeHttp:
    """A VVX whose provisioning server takes the license file and which never reports loading
    it; its license route lists `features`."""

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
            data = {"Features": features, "LastUpdate": None}
        if method == "PUT":
            return reply(201)
        if path.endswith("-license.cfg"):
            return HttpReply(status=404, headers={}, body=b"")
        return reply(200, {"data": data, "Status": "2000"} if data else {"Status": "2000"})

    return FakeHttp(handler)


async def test_uc_activation_poll_is_bounded_when_the_phone_never_reports() -> None:
    http = never_loading_phone([])
    driver = PolyUcDriver(ctx(http=http))
    driver.poll_attempts, driver.poll_interval_s = 3, 0.01  # type: ignore[misc]
    with pytest.raises(DeviceTimeout, match="license file"):
        await driver.apply_activation("uc_features", "PFK1-0004F2AABBCC-uc_features-2027-X")
    polls = [c for c in http.calls if c == ("GET", "/api/v1/mgmt/license/info")]
    assert len(polls) == 1 + 3  # the "before" read, then exactly the bounded polls
    assert ("PUT", "/site/0004f2aabbcc-license.cfg") in http.calls


@pytest.mark.parametrize(
    ("between", "reads_before_apply"),
    [
        (None, 1),  # the workflow's look right before applying is the "before" read
        ("identify", 2),  # another request since: the phone may have changed, read again
        ("wait", 2),  # older than FRESH_READ_S: read again
    ],
)
async def test_uc_apply_starts_from_the_last_read_only_when_nothing_came_between(
    between: str | None, reads_before_apply: int
) -> None:
    http = never_loading_phone([{"Feature": "uc_features", "State": "Expired"}])
    driver = PolyUcDriver(ctx(http=http))
    driver.poll_attempts, driver.poll_interval_s = 1, 0.01  # type: ignore[misc]
    await driver.identify()
    await driver.verify("uc_features")
    if between == "identify":
        await driver.identify()
    elif between == "wait":
        assert driver._last_read is not None
        read_at, info = driver._last_read
        driver._last_read = (read_at - uc.FRESH_READ_S, info)
    with pytest.raises(DeviceTimeout):  # the fake phone never reports loading the file
        await driver.apply_activation("uc_features", "PFK1-0004F2AABBCC-uc_features-2027-X")
    reads = [c for c in http.calls if c == ("GET", "/api/v1/mgmt/license/info")]
    assert len(reads) == reads_before_apply + 1  # and the one poll


# -- modeled parameters and modules a site can change -----------------------------------------


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
