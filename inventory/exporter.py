"""Writing devices as CSV or JSON that `inventory.importer` reads back into the same Devices.

Streams one device at a time, so exporting 100,000 devices never builds the whole file in
memory. CSV spells MACs with colons (a spreadsheet would turn an all-digit `482567123456` into a
number) and tags as `tag:<name>` columns; JSON keeps the canonical 12-hex MAC and nests `ports`
and `tags`. Timestamps are ISO 8601 with their timezone. A tag with an empty value cannot be
told from no tag in either format, and is not written. A CSV cell a spreadsheet would run as a
formula (`=…`, `+…`, `-…`, `@…`) gets a leading `'` (`inventory.safe_text`); the importer
takes it off again, so an export still reads back into the same devices.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, TextIO

from inventory.models import Device
from inventory.safe_text import CsvWriter

Format = Literal["csv", "json"]

CSV_COLUMNS: tuple[str, ...] = (
    "serial",
    "mac",
    "model",
    "product_group",
    "driver",
    "host",
    "snmp_port",
    "https_port",
    "ssh_port",
    "site",
    "firmware",
    "credentials",
    "tls_fingerprint",
    "ssh_host_key",
    "first_seen",
    "last_seen",
)
"""Fixed CSV columns, in order; `tag:<name>` columns follow, sorted by name."""


def write_devices(
    devices: Iterable[Device],
    fmt: Format,
    out: TextIO,
    *,
    tag_names: Iterable[str] | None = None,
) -> int:
    """Write `devices` to `out` in `fmt` and return how many were written.

    CSV needs every tag name for its header before the first row: pass `tag_names` (e.g. from
    the store) to stream a one-shot iterator; without it the devices are collected first (the
    Device objects, never the text). Open files with `newline=""` for CSV.
    """
    if fmt == "csv":
        return _write_csv(devices, out, tag_names)
    if fmt == "json":
        return _write_json(devices, out)
    raise ValueError(f"unknown export format {fmt!r}; use csv or json")


def _timestamp(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _write_csv(devices: Iterable[Device], out: TextIO, tag_names: Iterable[str] | None) -> int:
    if tag_names is None:
        devices = list(devices)
        names = sorted({name for device in devices for name in device.tags})
    else:
        names = sorted(set(tag_names))
    known = frozenset(names)
    writer = CsvWriter(out)
    writer.writerow([*CSV_COLUMNS, *(f"tag:{name}" for name in names)])
    count = 0
    for device in devices:
        extra = device.tags.keys() - known
        if extra:
            raise ValueError(
                f"device {device.serial} has tags {sorted(extra)} missing from tag_names"
            )
        ports = device.ports
        writer.writerow(
            [
                device.serial,
                device.mac or "",  # 12 lower-case hex digits, as in every JSON and CSV output
                device.model or "",
                device.product_group.value if device.product_group else "",
                device.driver or "",
                device.host or "",
                ports.snmp or "",
                ports.https or "",
                ports.ssh or "",
                device.site or "",
                device.firmware or "",
                device.credentials or "",
                device.tls_fingerprint or "",
                device.ssh_host_key or "",
                _timestamp(device.first_seen),
                _timestamp(device.last_seen),
                *(device.tags.get(name, "") for name in names),
            ]
        )
        count += 1
    return count


def device_to_json(device: Device) -> dict[str, Any]:
    """The export object of one device (the keys the importer reads back)."""
    ports = device.ports
    return {
        "serial": device.serial,
        "mac": device.mac,
        "model": device.model,
        "product_group": device.product_group.value if device.product_group else None,
        "driver": device.driver,
        "host": device.host,
        "ports": {"snmp": ports.snmp, "https": ports.https, "ssh": ports.ssh},
        "site": device.site,
        "firmware": device.firmware,
        "credentials": device.credentials,
        "tls_fingerprint": device.tls_fingerprint,
        "ssh_host_key": device.ssh_host_key,
        "first_seen": device.first_seen.isoformat() if device.first_seen else None,
        "last_seen": device.last_seen.isoformat() if device.last_seen else None,
        "tags": {name: value for name, value in device.tags.items() if value},
    }


def _write_json(devices: Iterable[Device], out: TextIO) -> int:
    count = 0
    out.write("[")
    for device in devices:
        out.write(",\n  " if count else "\n  ")
        out.write(json.dumps(device_to_json(device), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
