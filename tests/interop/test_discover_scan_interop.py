"""`polyfleet discover` and `polyfleet scan` against the interop peers (software nobody here
wrote): net-snmp's snmpd with POLYCOM-ENDPOINT-MIB identity, OpenSSH's sshd running the Group
Series API emulation, and nginx serving captured UC device-info JSON.

The peers listen on free ports of 127.0.0.1, so discover is pointed at them with its per-protocol
port options; the other two protocols go to a port where nothing listens, never to whatever a
workstation runs on 22 or 443. A device found on those ports keeps them in the inventory, which
is how the scan that follows reaches it.
"""

from __future__ import annotations

import getpass
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import Outcome, polyfleet
from tests.interop.conftest import (
    LICENSE_INFO,
    NGINX_PASSWORD,
    NGINX_USER,
    SNMPD_COMMUNITY,
    SNMPD_MAC,
    SNMPD_MODEL,
    SNMPD_SERIAL,
    SNMPD_SOFTWARE,
    SSHD_SERIAL,
    Nginx,
    Peer,
    Sshd,
    free_port,
)

UC_SERIAL, UC_MAC, UC_MODEL = "0004F2FE3AB0", "0004f2fe3ab0", "Trio 8800"
"""From the captured device-info.json: UC phones use their MAC as the serial."""


def profiles_toml(sshd: Sshd) -> str:
    return f"""
[profiles.snmp-ro]
snmp_community = "{SNMPD_COMMUNITY}"

[profiles.gs-key]
ssh_user = "{getpass.getuser()}"
ssh_key_file = "{sshd.client_key}"

[profiles.uc]
http_user = "{NGINX_USER}"
http_password = "{NGINX_PASSWORD}"

[profiles.uc-old]
http_user = "{NGINX_USER}"
http_password = "{NGINX_PASSWORD}-before-rotation"
"""


@pytest.fixture
def db(tmp_path: Path, sshd: Sshd) -> str:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(profiles_toml(sshd))
    imported = polyfleet(store, "credentials", "import", str(profiles))
    assert imported.code == 0, imported.stderr
    return store


def discover(db: str, profile: str, *, snmp: int, https: int, ssh: int) -> dict[str, Any]:
    result = polyfleet(
        db, "discover", "127.0.0.1", "--credentials", profile, "--timeout", "1",
        "--snmp-port", str(snmp), "--https-port", str(https), "--ssh-port", str(ssh), "-o", "json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    [row] = result.json()
    assert isinstance(row, dict)
    return row


def show(db: str, serial: str) -> dict[str, Any]:
    shown = polyfleet(db, "inventory", "show", serial, "-o", "json")
    assert shown.code == 0, shown.stderr
    [record] = shown.json()
    assert isinstance(record, dict)
    return record


def scan(db: str, serial: str) -> tuple[Outcome, dict[str, Any]]:
    result = polyfleet(db, "scan", "--id", serial, "--timeout", "2", "-o", "json")
    [row] = result.json()
    assert isinstance(row, dict)
    return result, row


def closed_ports() -> tuple[int, int]:
    """(udp, tcp) ports nothing listens on at the moment."""
    return free_port(socket.SOCK_DGRAM), free_port()


def test_snmpd_endpoint_mib_identity_is_discovered_as_group_series(snmpd: Peer, db: str) -> None:
    _, tcp = closed_ports()
    row = discover(db, "snmp-ro", snmp=snmpd.port, https=tcp, ssh=tcp)
    # The endpoint MIB names a Group Series model and a serial: a confident SNMP detection, so
    # polycom-gs identifies it, over SNMP since the profile has no SSH login.
    assert row == {
        "address": "127.0.0.1",
        "outcome": "found",
        "action": "added",
        "serial": SNMPD_SERIAL,
        "mac": SNMPD_MAC.replace(":", ""),
        "model": SNMPD_MODEL,
        "driver": "polycom-gs",
        "detail": None,
    }
    record = show(db, SNMPD_SERIAL)
    assert (record["credentials"], record["firmware"]) == ("snmp-ro", SNMPD_SOFTWARE)
    assert record["ports"] == {"snmp": snmpd.port, "https": tcp, "ssh": tcp}
    assert record["product_group"] == "video"

    result, scanned = scan(db, SNMPD_SERIAL)
    # Identity reads fine over SNMP; option keys live behind the SSH API this profile lacks.
    assert (scanned["model"], scanned["firmware"]) == (SNMPD_MODEL, SNMPD_SOFTWARE)
    assert scanned["error_kind"] is None, scanned["error"]
    assert result.code == 0
    assert scanned["licenses"] == []


def test_sshd_group_series_api_is_discovered_and_scanned(sshd: Sshd, db: str) -> None:
    udp, tcp = closed_ports()
    row = discover(db, "gs-key", snmp=udp, https=tcp, ssh=sshd.peer.port)
    assert (row["outcome"], row["driver"], row["serial"]) == ("found", "polycom-gs", SSHD_SERIAL)
    assert (row["model"], row["mac"]) == ("Group Series 500", None)  # no SNMP: no MAC
    assert show(db, SSHD_SERIAL)["ports"]["ssh"] == sshd.peer.port

    result, scanned = scan(db, SSHD_SERIAL)
    assert result.code == 0, scanned["error"]
    assert (scanned["reachable"], scanned["firmware"]) == (True, "6.2.2.8-460003")
    assert scanned["licenses"] == [
        {"feature": "multipoint", "state": "active", "expires_at": "2027-11-30T23:59:59+00:00"},
        {"feature": "1080p", "state": "missing", "expires_at": None},
    ]
    assert show(db, SSHD_SERIAL)["ssh_host_key"] == sshd.host_key  # pinned on first use


def test_nginx_device_info_is_discovered_as_a_uc_phone_and_scanned(nginx: Nginx, db: str) -> None:
    udp, tcp = closed_ports()
    row = discover(db, "uc", snmp=udp, https=nginx.peer.port, ssh=tcp)
    assert row == {
        "address": "127.0.0.1",
        "outcome": "found",
        "action": "added",
        "serial": UC_SERIAL,
        "mac": UC_MAC,
        "model": UC_MODEL,
        "driver": "poly-uc",
        "detail": None,
    }
    assert show(db, UC_SERIAL)["product_group"] == "soundstation-ip"

    result, scanned = scan(db, UC_SERIAL)
    assert result.code == 0, scanned["error"]
    served = json.loads(LICENSE_INFO.read_text())["data"]["Features"]
    assert scanned["licenses"] == [
        {"feature": f["Feature"], "state": f["State"], "expires_at": f["ExpiresAt"]} for f in served
    ]
    assert show(db, UC_SERIAL)["tls_fingerprint"] == nginx.certs.fingerprint  # pinned


def test_wrong_credentials_on_a_peer_are_credentials_refused(nginx: Nginx, db: str) -> None:
    udp, tcp = closed_ports()
    row = discover(db, "uc-old", snmp=udp, https=nginx.peer.port, ssh=tcp)
    assert (row["outcome"], row["action"], row["driver"]) == (
        "credentials_refused", None, "poly-uc",
    )  # fmt: skip
    assert polyfleet(db, "inventory", "list", "-o", "json").json() == []
