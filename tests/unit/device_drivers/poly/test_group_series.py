"""The Group Series driver against in-memory fakes (no sockets): identity over SNMP when no SSH
credentials are given."""

from __future__ import annotations

import pytest

from device_drivers.errors import NotSupported
from device_drivers.poly._common import NIC_WALK_PAGE
from device_drivers.poly.group_series import PolycomGsDriver
from tests.unit.device_drivers.fakes import FakeSnmp, ctx


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
    # The NIC column holds a row or two: a small GETBULK page, not the MIB that follows it.
    [(target, column)] = snmp.walked
    assert (column, target.max_repetitions) == (f"{ep}.3.10.2.1.3", NIC_WALK_PAGE)
    with pytest.raises(NotSupported, match="SSH"):
        await PolycomGsDriver(ctx()).identify()
