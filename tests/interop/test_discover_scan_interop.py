"""`polyfleet discover`, `scan`, `health` and `probe` against the interop peers (software nobody
here wrote) answering only what public sources document: net-snmp's snmpd with
POLYCOM-ENDPOINT-MIB identity and a NIC MAC, OpenSSH's sshd running a Group Series API emulation
that prints the `whoami` block and documented error lines with no prompt, and nginx serving
captured UC JSON with no license route.

Every device is discovered with its serial, MAC where it gives one, and product group; none of
them answers a modeled license call, so a scan exits 1, `health` says UNKNOWN for each naming the
call that failed, and `probe` names it too and exits 1.

The peers listen on free ports of 127.0.0.1, so discover is pointed at them with its per-protocol
port options; the other two protocols go to a port where nothing listens, never to whatever a
workstation runs on 22 or 443. A device found on those ports keeps them in the inventory, which
is how the scan that follows reaches it.
"""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import Outcome, polyfleet
from tests.interop.conftest import (
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

[profiles.gs-other-key]
ssh_user = "{getpass.getuser()}"
ssh_key_file = "{sshd.other_key}"
"""


@pytest.fixture
def db(tmp_path: Path, sshd: Sshd) -> str:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(profiles_toml(sshd))
    imported = polyfleet(store, "credentials", "import", str(profiles))
    assert imported.code == 0, imported.stderr
    return store


def discover(db: str, profile: str | None, *, snmp: int, https: int, ssh: int) -> dict[str, Any]:
    creds = ("--credentials", profile) if profile else ()
    result = polyfleet(
        db, "discover", "127.0.0.1", *creds, "--timeout", "1",
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
    result = polyfleet(db, "scan", "--id", serial, "--timeout", "3", "-o", "json")
    [row] = result.json()
    assert isinstance(row, dict)
    return result, row


def closed_ports() -> tuple[int, int]:
    """(udp, tcp) ports nothing listens on at the moment."""
    return free_port(socket.SOCK_DGRAM), free_port()


GS_LIST = "SSH `optionkey list`"
"""The Group Series driver's modeled license call, as scans and probe name it."""
UC_LICENSE = "GET /api/v1/mgmt/license/info"


def test_snmpd_group_series_is_found_with_the_default_community_mac_and_product_group(
    snmpd: Peer, db: str
) -> None:
    _, tcp = closed_ports()
    # No --credentials: the default community identifies it, and reads hardwareNICNICsMAC too.
    row = discover(db, None, snmp=snmpd.port, https=tcp, ssh=tcp)
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
    assert (record["firmware"], record["product_group"]) == (SNMPD_SOFTWARE, "video")
    assert record["mac"] == "0004f2123456"  # JSON: 12 lower-case hex digits
    assert record["ports"] == {"snmp": snmpd.port, "https": tcp, "ssh": tcp}

    result, scanned = scan(db, SNMPD_SERIAL)
    # Identity reads fine over SNMP; option keys live behind the SSH API it has no login for.
    assert (scanned["model"], scanned["firmware"]) == (SNMPD_MODEL, SNMPD_SOFTWARE)
    assert (scanned["reachable"], scanned["error"], scanned["licenses"]) == (True, None, [])
    assert scanned["license_read"] == {
        "ok": False,
        "call": GS_LIST,
        "detail": "the Group Series API needs an SSH login; the credential profile has none",
        "modeled": True,
    }
    assert result.code == 1
    assert "license state could not be read" in result.stderr


def test_snmpd_with_a_community_profile_reads_the_same_mac(snmpd: Peer, db: str) -> None:
    _, tcp = closed_ports()
    row = discover(db, "snmp-ro", snmp=snmpd.port, https=tcp, ssh=tcp)
    assert (row["outcome"], row["driver"], row["mac"]) == ("found", "polycom-gs", "0004f2123456")


def test_sshd_group_series_without_a_prompt_is_found_and_its_list_error_recorded(
    sshd: Sshd, db: str
) -> None:
    udp, tcp = closed_ports()
    row = discover(db, "gs-key", snmp=udp, https=tcp, ssh=sshd.peer.port)
    assert (row["outcome"], row["driver"], row["serial"]) == ("found", "polycom-gs", SSHD_SERIAL)
    assert (row["model"], row["mac"]) == ("Group Series 500", None)  # no SNMP: no MAC
    assert show(db, SSHD_SERIAL)["product_group"] == "video"

    result, scanned = scan(db, SSHD_SERIAL)
    assert (scanned["reachable"], scanned["error"]) == (True, None)
    assert scanned["firmware"] == "6.2.2.8-460003"
    assert scanned["license_read"] == {
        "ok": False,
        "call": GS_LIST,
        "detail": "error: command not found",
        "modeled": True,
    }
    assert result.code == 1
    assert show(db, SSHD_SERIAL)["ssh_host_key"] == sshd.host_key  # pinned on first use


def test_nginx_uc_phone_is_found_and_the_missing_license_route_recorded(
    nginx: Nginx, db: str
) -> None:
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
    assert (scanned["reachable"], scanned["error"], scanned["licenses"]) == (True, None, [])
    assert scanned["license_read"] == {
        "ok": False,
        "call": UC_LICENSE,
        "detail": "HTTP 404 (REST API disabled, or no such route on this firmware)",
        "modeled": True,
    }
    assert result.code == 1
    assert show(db, UC_SERIAL)["tls_fingerprint"] == nginx.certs.fingerprint  # pinned


def test_discovery_outcomes_tell_silent_refused_and_unrecognised_apart(
    nginx: Nginx, sshd: Sshd, db: str
) -> None:
    udp, tcp = closed_ports()
    silent = discover(db, "uc", snmp=udp, https=tcp, ssh=tcp)
    assert (silent["outcome"], silent["detail"]) == ("silent", "no answer on SNMP, HTTPS or SSH")

    refused = discover(db, "uc-old", snmp=udp, https=nginx.peer.port, ssh=tcp)
    assert (refused["outcome"], refused["action"], refused["driver"]) == (
        "credentials_refused", None, "poly-uc",
    )  # fmt: skip
    ssh_refused = discover(db, "gs-other-key", snmp=udp, https=tcp, ssh=sshd.peer.port)
    assert (ssh_refused["outcome"], ssh_refused["driver"]) == ("credentials_refused", "polycom-gs")

    web = discover(db, "uc", snmp=udp, https=nginx.other_port, ssh=tcp)
    assert web["outcome"] == "not_recognised"
    assert web["detail"].startswith("answered but not recognised: poly-uc: ")
    assert "HTTP 404" in web["detail"]  # what it said
    assert polyfleet(db, "inventory", "list", "-o", "json").json() == []


def test_health_is_unknown_for_each_naming_the_call_and_probe_names_it_too(
    snmpd: Peer, sshd: Sshd, nginx: Nginx, db: str, tmp_path: Path
) -> None:
    udp, tcp = closed_ports()
    discover(db, None, snmp=snmpd.port, https=tcp, ssh=tcp)
    discover(db, "gs-key", snmp=udp, https=tcp, ssh=sshd.peer.port)
    discover(db, "uc", snmp=udp, https=nginx.peer.port, ssh=tcp)
    scanned = polyfleet(db, "scan", "--timeout", "3", "-o", "json")
    assert scanned.code == 1, scanned.stderr
    assert [r["license_read"]["ok"] for r in scanned.json()] == [False, False, False]

    health = polyfleet(db, "health", "--format", "json")
    assert health.code == 3, health.stderr
    data = health.json()
    assert (data["status"], data["counts"]["UNKNOWN"]) == ("UNKNOWN", 3)
    reasons = {d["serial"]: d["reason"] for d in data["devices"]}
    assert reasons == {
        SNMPD_SERIAL: f"license state not read: {GS_LIST} (modeled call): the Group"
        " Series API needs an SSH login; the credential profile has none;"
        f" run `polyfleet probe {SNMPD_SERIAL}`",
        SSHD_SERIAL: f"license state not read: {GS_LIST} (modeled call): error: command"
        f" not found; run `polyfleet probe {SSHD_SERIAL}`",
        UC_SERIAL: f"license state not read: {UC_LICENSE} (modeled call): HTTP 404"
        " (REST API disabled, or no such route on this firmware);"
        f" run `polyfleet probe {UC_SERIAL}`",
    }
    nagios = polyfleet(db, "health", "--format", "nagios")
    assert nagios.code == 3
    assert nagios.stdout.startswith("POLYFLEET UNKNOWN - 3 unknown of 3 devices |")
    assert f"UNKNOWN: {UC_SERIAL} - license state not read: {UC_LICENSE}" in nagios.stdout
    prom = polyfleet(db, "health", "--format", "prometheus")
    assert f'polyfleet_license_read{{serial="{UC_SERIAL}",call="{UC_LICENSE}"' in prom.stdout
    text = polyfleet(db, "health")
    assert text.code == 3
    assert "polyfleet probe" in text.stdout

    # A site whose policy declares that model unlicensed: that device is OK, and says why.
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[licensing]\nno_licensed_features = [{ pattern = "Trio*", reason = "no options" }]\n'
    )
    config = tmp_path / "polyfleet.toml"
    config.write_text(f'policy = "{policy}"\n')
    declared = polyfleet(db, "--config", str(config), "health", "--format", "json")
    assert declared.code == 3  # the two Group Series are still UNKNOWN
    uc = next(d for d in declared.json()["devices"] if d["serial"] == UC_SERIAL)
    assert (uc["status"], uc["reason"]) == (
        "OK",
        f"model 'Trio 8800' has no licensed features (policy {policy}, pattern 'Trio*': no"
        " options)",
    )

    probed = polyfleet(db, "probe", UC_SERIAL, "-o", "json")
    assert probed.code == 1, probed.stderr
    report = probed.json()
    calls = {c["call"]: c for c in report["calls"]}
    assert calls["GET /api/v1/mgmt/device/info"]["documented"] is True
    assert calls["GET /api/v1/mgmt/device/info"]["answer"].startswith('HTTP 200 {"data"')
    missing = calls[UC_LICENSE]
    assert (missing["modeled"], missing["answer"][:8]) == (True, "HTTP 404")
    assert missing["conclusion"].startswith("FAILED: not_supported: GET /api/v1/mgmt/license")
    assert calls["GET /api/v1/mgmt/network/info"]["conclusion"].startswith(
        "ok: provisioning server http://prov.example.com/phones"
    )  # the read an activation starts with; nothing was applied

    table = polyfleet(db, "probe", SSHD_SERIAL)
    assert table.code == 1
    assert "SSH optionkey list" in table.stdout
    assert "MODELED" in table.stdout
    assert "error: command not found" in table.stderr  # the failing call, named
    assert "under [drivers.polycom-gs] in the config file" in table.stderr

    # Over SNMP only: identity and MAC read, the modeled list call could not even be made.
    snmp_only = polyfleet(db, "probe", SNMPD_SERIAL, "-o", "json")
    assert snmp_only.code == 1
    *identify, listing = snmp_only.json()["calls"]
    assert identify[-1]["call"].startswith("SNMP WALK hardware_nic_mac_column")
    assert identify[-1]["conclusion"].startswith(f"ok: serial {SNMPD_SERIAL}")
    assert "MAC 0004f2123456, product group video" in identify[-1]["conclusion"]
    assert (listing["call"], listing["modeled"], listing["answered"]) == (GS_LIST, True, False)
    assert "needs an SSH login" in listing["conclusion"]


def test_probe_and_drivers_list_show_the_modeled_values_the_config_file_sets(
    nginx: Nginx, db: str, tmp_path: Path
) -> None:
    udp, tcp = closed_ports()
    discover(db, "uc", snmp=udp, https=nginx.peer.port, ssh=tcp)
    config = tmp_path / "polyfleet.toml"
    config.write_text('[drivers.poly-uc]\nlicense_info_path = "/api/v1/mgmt/license/status"\n')

    probed = polyfleet(db, "--config", str(config), "probe", UC_SERIAL, "-o", "json")
    assert probed.code == 1
    report = probed.json()
    assert report["settings"]["license_info_path"] == "/api/v1/mgmt/license/status"
    [failed] = [c for c in report["calls"] if c["conclusion"].startswith("FAILED")]
    assert (failed["call"], failed["modeled"]) == ("GET /api/v1/mgmt/license/status", True)
    assert failed["answer"].startswith("HTTP 404")

    listed = polyfleet(db, "--config", str(config), "drivers", "list", "-o", "json")
    params = {row["name"]: row["modeled_params"] for row in listed.json()}
    assert params["poly-uc"]["license_info_path"] == "/api/v1/mgmt/license/status"
    assert params["polycom-gs"] == {
        "prompt": "-> ",
        "list_command": "optionkey list",
        "list_end": "optionkey end",
        "apply_command": "optionkey apply {key}",
    }
    assert params["poly-videoos"] == {"options_path": "/rest/system/options"}

    config.write_text('[drivers.polycom-gs]\nlist_cmd = "options"\n')
    wrong = polyfleet(db, "--config", str(config), "probe", UC_SERIAL)
    assert wrong.code == 2
    assert "[drivers.polycom-gs] list_cmd: Extra inputs are not permitted" in wrong.stderr
