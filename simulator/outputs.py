"""Files `polyfleet simulate` writes for the controller: inventory CSV, credential profiles TOML
(secrets, mode 0600) and the portal access file (token, mode 0600)."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from inventory.catalog import product_group_for_model
from simulator.fleet import FAMILIES, UC_FAMILIES
from simulator.persistence import write_private
from simulator.runner import Endpoint
from simulator.state import SimCredentials, SimDevice

INVENTORY_COLUMNS: tuple[str, ...] = (
    "serial",
    "mac",
    "model",
    "host",
    "site",
    "product_group",
    "https_port",
    "snmp_port",
    "ssh_port",
    "credentials",
)
UC_PROFILE = "sim-uc"
ADMIN_PROFILE = "sim-admin"


def profile_name(device: SimDevice) -> str:
    """UC phones log in as `Polycom`, everything else networked as `admin`; analog has none."""
    if device.mac is None:
        return ""
    return UC_PROFILE if device.family in UC_FAMILIES else ADMIN_PROFILE


def format_mac(mac: str | None) -> str:
    """`00:04:f2:aa:bb:cc`, or empty for devices without a network port."""
    if not mac:
        return ""
    return ":".join(mac[i : i + 2] for i in range(0, 12, 2))


def _port(value: int | None) -> str:
    return "" if value is None else str(value)


def inventory_rows(
    devices: Sequence[SimDevice], endpoints: Mapping[str, Endpoint]
) -> list[dict[str, str]]:
    """One row per device, with the ports it really listens on."""
    rows: list[dict[str, str]] = []
    for device in devices:
        endpoint = endpoints.get(device.serial)
        group = product_group_for_model(device.model) or FAMILIES[device.family].product_group
        rows.append(
            {
                "serial": device.serial,
                "mac": format_mac(device.mac),
                "model": device.model,
                "host": endpoint.host if endpoint else device.host,
                "site": device.site,
                "product_group": group.value,
                "https_port": _port(endpoint.https_port if endpoint else None),
                "snmp_port": _port(endpoint.snmp_port if endpoint else None),
                "ssh_port": _port(endpoint.ssh_port if endpoint else None),
                "credentials": profile_name(device),
            }
        )
    return rows


def write_inventory_csv(
    path: Path, devices: Sequence[SimDevice], endpoints: Mapping[str, Endpoint]
) -> None:
    """The inventory file for `polyfleet inventory import`."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=INVENTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(inventory_rows(devices, endpoints))


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def credentials_toml(profiles: Mapping[str, SimCredentials]) -> str:
    """Credential profiles for `polyfleet credentials import` (contains secrets)."""
    lines = ["# polyfleet simulated fleet: credential profiles. Contains secrets (mode 0600).", ""]
    for name, creds in profiles.items():
        lines += [
            f"[profiles.{name}]",
            f"http_user = {_toml_str(creds.http_user)}",
            f"http_password = {_toml_str(creds.http_password)}",
            f"ssh_user = {_toml_str(creds.ssh_user)}",
            f"ssh_password = {_toml_str(creds.ssh_password)}",
            'snmp_version = "2c"',
            f"snmp_community = {_toml_str(creds.snmp_community)}",
            f"snmp_user = {_toml_str(creds.snmp_v3_user)}",
            'snmp_auth_protocol = "sha"',
            'snmp_priv_protocol = "aes"',
            f"snmp_auth_key = {_toml_str(creds.snmp_v3_auth_key)}",
            f"snmp_priv_key = {_toml_str(creds.snmp_v3_priv_key)}",
            "",
        ]
    return "\n".join(lines)


def fleet_profiles(password: str) -> dict[str, SimCredentials]:
    """The profiles the fleet's devices were configured with (before any wrong-password fault)."""
    return {
        UC_PROFILE: SimCredentials(
            http_user="Polycom", http_password=password, ssh_password=password
        ),
        ADMIN_PROFILE: SimCredentials(
            http_user="admin", http_password=password, ssh_password=password
        ),
    }


def write_credentials_toml(path: Path, password: str) -> None:
    """Write the credential profiles, readable by the owner only."""
    write_private(path, credentials_toml(fleet_profiles(password)))


def write_portal_toml(path: Path, portal_url: str, token: str) -> None:
    """A polyfleet config file naming the licensing portal (`polyfleet --config FILE`).

    It holds the portal's API token, so it is readable by the owner only.
    """
    text = "\n".join(
        [
            "# polyfleet config for the simulated licensing portal: polyfleet --config THIS_FILE",
            "# Contains the API token (mode 0600).",
            "[portal]",
            f"url = {_toml_str(portal_url)}",
            f"token = {_toml_str(token)}",
            "",
        ]
    )
    write_private(path, text)
