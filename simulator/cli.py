"""`polyfleet simulate`: run a simulated Poly fleet on loopback until Ctrl-C / SIGTERM.

`simulate` is a plain typer command function; the CLI root registers it. It writes the inventory,
contracts, credential profiles and portal access files, prints a summary (never a secret), and
with `--state-file` keeps license state, secrets, issued keys and provisioning files.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from simulator.context import FleetSecrets
from simulator.contracts import (
    DEFAULT_COVERAGE,
    contracts_from_json,
    contracts_to_json,
    generate_contracts,
    write_contracts_csv,
)
from simulator.faults import FaultSpecError, apply_faults, parse_faults
from simulator.fleet import (
    DEFAULT_LICENSE_MIX,
    DEFAULT_MIX,
    MixError,
    generate_fleet,
    parse_license_mix,
    parse_mix,
)
from simulator.licensing import effective_state
from simulator.outputs import write_credentials_toml, write_inventory_csv, write_portal_toml
from simulator.persistence import apply_device_state, devices_state, load_state, save_state
from simulator.runner import RunningFleet, auto_workers, run_fleet

DEFAULT_MIX_TEXT = ",".join(f"{key}={share}" for key, share in DEFAULT_MIX.items())
DEFAULT_LICENSE_MIX_TEXT = ",".join(f"{k}={share}" for k, share in DEFAULT_LICENSE_MIX.items())
SAVE_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    """Everything `simulate` was asked to do, resolved to paths and parsed values."""

    devices: int
    mix: dict[str, int]
    seed: int
    base_address: str
    password: str
    faults: str
    inventory_out: Path
    contracts_out: Path
    credentials_out: Path
    portal_out: Path
    state_file: Path | None
    workers: int
    portal_port: int
    provisioning_port: int
    license_mix: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LICENSE_MIX))
    coverage: int = DEFAULT_COVERAGE


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(f"{path.stem}{suffix}")


def _echo(message: str) -> None:
    typer.echo(message, err=True)


def _summary(fleet: RunningFleet, options: SimulateOptions, applied: dict[str, int]) -> str:
    families = Counter(d.family for d in fleet.devices)
    states = Counter(
        effective_state(lic).value for d in fleet.devices for lic in d.licenses.values()
    )
    fallback = sum(
        1
        for d in fleet.devices
        if (e := fleet.endpoints.get(d.serial)) and e.https_port not in (None, d.https_port)
    )
    lines = [
        f"simulated fleet: {len(fleet.devices)} devices (seed {options.seed}, "
        f"{fleet.workers} process{'es' if fleet.workers > 1 else ''})",
        "  families: " + ", ".join(f"{k}={v}" for k, v in sorted(families.items())),
        "  licenses: " + ", ".join(f"{k}={v}" for k, v in sorted(states.items())),
        "  faults:   " + (", ".join(f"{k}={v}" for k, v in sorted(applied.items())) or "none"),
        f"  contracts: {len(fleet.contracts)}",
        f"  portal:       {fleet.portal_url}  (token in {options.portal_out})",
        f"  provisioning: {fleet.provisioning_url}/<site>/<mac>-license.cfg",
        f"  inventory:    {options.inventory_out}",
        f"  contracts:    {options.contracts_out}",
        f"  credentials:  {options.credentials_out}",
    ]
    if fallback:
        lines.append(f"  {fallback} devices use a per-device HTTPS port (see the inventory)")
    if options.state_file:
        lines.append(f"  state file:   {options.state_file}")
    lines.append("running; press Ctrl-C to stop")
    return "\n".join(lines)


def _state(fleet: RunningFleet, state: dict[str, Any], opts: SimulateOptions) -> dict[str, Any]:
    """Everything the state file keeps."""
    return {
        "seed": opts.seed,
        "devices_count": opts.devices,
        "mix": opts.mix,
        "base_address": opts.base_address,
        "secrets": fleet.secrets.to_json(),
        "contracts": contracts_to_json(fleet.contracts),
        "devices": state,
        "issued_keys": fleet.portal.to_json(),
        "provisioning_files": [
            {"site": site, "name": name, "content": content.decode("utf-8", errors="replace")}
            for (site, name), content in sorted(fleet.provisioning_files.items())
        ],
    }


async def run_simulation(options: SimulateOptions, stop: asyncio.Event | None = None) -> None:
    """Start the fleet, write the files, serve until `stop` (or a signal), then save state."""
    saved = load_state(options.state_file) if options.state_file else None
    devices = generate_fleet(
        options.devices,
        options.mix,
        options.seed,
        options.base_address,
        password=options.password,
        license_mix=options.license_mix,
    )
    applied = apply_faults(devices, parse_faults(options.faults), options.seed)
    if saved is not None:
        if (saved.get("seed"), saved.get("base_address")) != (options.seed, options.base_address):
            raise ValueError(
                f"{options.state_file} belongs to a fleet with seed {saved.get('seed')} at "
                f"{saved.get('base_address')}; use the same --seed/--base-address or another file"
            )
        fleet_secrets = FleetSecrets.from_json(saved["secrets"])
        contracts = contracts_from_json(saved.get("contracts", []))
        for device in devices:
            if device.serial in saved.get("devices", {}):
                apply_device_state(device, saved["devices"][device.serial])
        files = {
            (item["site"], item["name"]): item["content"].encode()
            for item in saved.get("provisioning_files", [])
        }
    else:
        fleet_secrets = FleetSecrets.generate()
        contracts = generate_contracts(devices, options.seed, coverage=options.coverage)
        files = {}
    stop_event = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    async with run_fleet(
        devices,
        secrets=fleet_secrets,
        contracts=contracts,
        seed=options.seed,
        workers=options.workers or auto_workers(len(devices)),
        portal_port=options.portal_port,
        provisioning_port=options.provisioning_port,
        provisioning_files=files,
    ) as fleet:
        if saved is not None:
            fleet.portal.load_json(saved.get("issued_keys", []))
        write_inventory_csv(options.inventory_out, devices, fleet.endpoints)
        write_contracts_csv(options.contracts_out, contracts)
        write_credentials_toml(options.credentials_out, options.password)
        write_portal_toml(options.portal_out, fleet.portal_url, fleet_secrets.portal_token)
        typer.echo(_summary(fleet, options, applied))
        # Until here Ctrl-C interrupts start-up as usual; from now on it stops the fleet cleanly.
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop_event.set)
        while not stop_event.is_set():  # ends on Ctrl-C / SIGTERM; saves state meanwhile
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), SAVE_EVERY_S)
            if options.state_file:
                save_state(options.state_file, _state(fleet, await fleet.snapshot(), options))
        _echo("stopping the simulated fleet")
    if options.state_file:
        # After the fleet stopped, `devices` hold the final state (collected from workers).
        save_state(options.state_file, _state(fleet, devices_state(devices), options))
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signum)


def simulate(
    devices: Annotated[
        int, typer.Option("--devices", "-n", min=0, max=65000, help="Fleet size.")
    ] = 100,
    mix: Annotated[
        str, typer.Option(help="Percent per family: vvx,trio,ccx,studiox,gs,dma,rprm,analog.")
    ] = DEFAULT_MIX_TEXT,
    seed: Annotated[int, typer.Option(help="Same seed, same fleet.")] = 1,
    license_mix: Annotated[
        str,
        typer.Option(help="Percent of devices per license state: active,expiring,expired,…"),
    ] = DEFAULT_LICENSE_MIX_TEXT,
    contract_coverage: Annotated[
        int, typer.Option(min=0, max=100, help="Percent of devices under an active contract.")
    ] = DEFAULT_COVERAGE,
    inventory_out: Annotated[
        Path, typer.Option("--inventory-out", help="Inventory CSV to write.")
    ] = Path("fleet.csv"),
    contracts_out: Annotated[
        Path | None,
        typer.Option("--contracts-out", help="Contracts CSV [default: <inventory>.contracts.csv]."),
    ] = None,
    credentials_out: Annotated[
        Path | None,
        typer.Option(
            "--credentials-out", help="Credential profiles [default: <inventory>.credentials.toml]."
        ),
    ] = None,
    state_file: Annotated[
        Path | None, typer.Option("--state-file", help="Keep license state across restarts.")
    ] = None,
    password: Annotated[
        str,
        typer.Option(
            envvar="POLYFLEET_SIM_PASSWORD",
            help="Admin password of every device (phones' factory default 456).",
        ),
    ] = "456",
    faults: Annotated[
        str, typer.Option(help="e.g. unreachable=5%,slow=10%,busy@SERIAL,latency=0.5")
    ] = "",
    base_address: Annotated[str, typer.Option(help="First device address.")] = "127.20.0.1",
    workers: Annotated[int, typer.Option(min=0, max=16, help="Processes; 0 = automatic.")] = 0,
    portal_port: Annotated[int, typer.Option(min=0, max=65535, help="0 = any free port.")] = 0,
    provisioning_port: Annotated[int, typer.Option(min=0, max=65535)] = 0,
) -> None:
    """Run a simulated Poly fleet on loopback addresses until Ctrl-C."""
    try:
        parsed_mix = parse_mix(mix)
        parsed_license_mix = parse_license_mix(license_mix)
        parse_faults(faults)
    except (MixError, FaultSpecError) as exc:
        raise typer.BadParameter(str(exc)) from None
    for path in (inventory_out, contracts_out, credentials_out, state_file):
        if path is not None and not path.parent.is_dir():
            raise typer.BadParameter(f"{path}: directory {path.parent} does not exist")
    options = SimulateOptions(
        devices=devices,
        mix=parsed_mix,
        seed=seed,
        license_mix=parsed_license_mix,
        coverage=contract_coverage,
        base_address=base_address,
        password=password,
        faults=faults,
        inventory_out=inventory_out,
        contracts_out=contracts_out or _sibling(inventory_out, ".contracts.csv"),
        credentials_out=credentials_out or _sibling(inventory_out, ".credentials.toml"),
        portal_out=_sibling(inventory_out, ".portal.toml"),
        state_file=state_file,
        workers=workers,
        portal_port=portal_port,
        provisioning_port=provisioning_port,
    )
    try:
        asyncio.run(run_simulation(options))
    except (ValueError, OSError) as exc:
        _echo(f"error: {exc}")
        raise typer.Exit(1) from None
