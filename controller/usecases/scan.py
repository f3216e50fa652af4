"""The scan use case: select inventory devices, scan them, record every result as it lands."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from controller.device_session import open_transports
from controller.scan import SKIPPED_KINDS as SKIPPED_KINDS  # what `health --scan` counts
from controller.scan import ScanEngine, ScanOptions, ScanResult
from controller.scan_recorder import ScanRecorder
from device_drivers.registry import DriverRegistry
from inventory.credential_store import CredentialStore, ProfileNotFound
from inventory.models import CredentialProfile, Device
from inventory.observation_store import ObservationStore
from inventory.secret_box import SecretBox
from inventory.store import InventoryStore


class ScanRequest(BaseModel):
    """Which devices to scan and how: by `ids` (each must exist) or by `site`, else all."""

    model_config = ConfigDict(frozen=True)

    site: str | None = None
    ids: list[str] | None = None
    credentials: str | None = None
    """The profile of devices that name none."""
    options: ScanOptions = Field(default_factory=ScanOptions)


def summarize(results: Sequence[ScanResult]) -> dict[str, int]:
    """How many results had each outcome (`ok`, `license_unread`, `skipped`, an error kind)."""
    return dict(sorted(Counter(r.outcome for r in results).items()))


async def select_devices(
    store: InventoryStore, site: str | None, ids: Sequence[str] | None
) -> list[Device]:
    """Devices by --id (any spelling, each must exist) or by --site, else the whole inventory."""
    if ids:
        chosen = [await store.get_device(device_id) for device_id in ids]
        return [d for d in chosen if site is None or d.site == site]
    return await store.list_devices(site=site)


async def load_profiles(
    creds: CredentialStore, devices: Sequence[Device], default: str | None
) -> dict[str, CredentialProfile]:
    """Every credential profile the devices (or the default) name, decrypted once. Raises
    ProfileNotFound when the default profile does not exist."""
    names = {d.credentials for d in devices if d.credentials}
    if default:
        names.add(default)
    profiles = {}
    for name in sorted(names):
        try:
            profiles[name] = await creds.get(name)
        except ProfileNotFound:
            if name == default:
                raise
    return profiles


async def profiles_for(
    store: InventoryStore, devices: Sequence[Device], default: str | None
) -> dict[str, CredentialProfile]:
    """`load_profiles` from the store's own credential table (keys from the environment)."""
    creds = CredentialStore(store.engine, SecretBox.from_environment())
    return await load_profiles(creds, devices, default)


async def run_scan(
    store: InventoryStore,
    request: ScanRequest,
    *,
    on_selected: Callable[[int], None] | None = None,
    on_result: Callable[[ScanResult], None] | None = None,
    profiles: Mapping[str, CredentialProfile] | None = None,
) -> list[ScanResult]:
    """Select, scan and record; results and pins are written as they arrive, so an interrupted
    scan keeps everything read so far. `on_selected` hears how many devices were chosen;
    `profiles` replaces the store's credentials (a site agent holds its own)."""
    devices = await select_devices(store, request.site, request.ids)
    if on_selected is not None:
        on_selected(len(devices))
    return await scan_devices(store, devices, request, on_result=on_result, profiles=profiles)


async def scan_devices(
    store: InventoryStore,
    devices: Sequence[Device],
    request: ScanRequest,
    *,
    on_result: Callable[[ScanResult], None] | None = None,
    profiles: Mapping[str, CredentialProfile] | None = None,
) -> list[ScanResult]:
    """Scan already selected devices, recording results and pins as they arrive."""
    options = request.options
    if profiles is None:
        profiles = await profiles_for(store, devices, request.credentials)
    observations = ObservationStore(store.engine, keep=store.observation_history)
    async with (
        open_transports(options.concurrency) as transports,
        ScanRecorder(
            observations,
            pin_writer=store.pin_first_use_many,
            pending_writer=store.set_pending_pin,
        ) as recorder,
    ):
        engine = ScanEngine(
            DriverRegistry(),
            transports,
            profiles,
            options=options,
            default_credentials=request.credentials,
            pin_store=recorder.pin,  # batched with the results, not a commit per pin
            on_trust_mismatch=recorder.pending_pin,
        )

        async def record(result: ScanResult) -> None:
            await recorder.add(result)
            if on_result is not None:
                on_result(result)

        return await engine.scan(devices, record)
