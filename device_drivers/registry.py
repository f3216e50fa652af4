"""The driver registry: drivers come from the `polyfleet.drivers` entry-point group.

A third-party package adds a driver by declaring an entry point in that group; nothing of ours
changes. Two drivers with the same name are an error, never a silent override. Registry state
lives on the instance (nornir keeps it in a shared class attribute; we don't).

The registry also chooses: each driver declares the catalogue families or models it serves and
its rank in discovery's probe order, so scans and discovery pick a plugin's driver for its
devices without an inventory row naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from device_drivers.base import DeviceDriver
from device_drivers.errors import DeviceDriversError
from inventory.catalog import family_for_model, squash_model
from inventory.models import Device

ENTRY_POINT_GROUP = "polyfleet.drivers"


class DriverRegistryError(DeviceDriversError):
    """A driver cannot be registered or found."""


class DriverAlreadyRegistered(DriverRegistryError):
    """Two drivers claim the same name."""


class DriverNotFound(DriverRegistryError, LookupError):
    """No registered driver has that name."""


class DriverRegistry:
    """Name → driver class, loaded from entry points on first use."""

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._drivers: dict[str, type[DeviceDriver]] = {}
        self._origins: dict[str, str] = {}
        self._by_model: dict[str, type[DeviceDriver] | None] = {}
        self._loaded = False

    def register(self, driver: type[DeviceDriver], *, origin: str = "code") -> None:
        """Add a driver class; a second, different class under the same name is refused."""
        if not (isinstance(driver, type) and issubclass(driver, DeviceDriver)):
            raise DriverRegistryError(f"{driver!r} from {origin} is not a DeviceDriver subclass")
        name = getattr(driver, "name", None)
        if not isinstance(name, str) or not name:
            raise DriverRegistryError(f"driver {driver.__qualname__} from {origin} has no name")
        existing = self._drivers.get(name)
        if existing is not None and existing is not driver:
            raise DriverAlreadyRegistered(
                f"driver name {name!r} is claimed by {self._origins[name]} and by {origin}"
            )
        self._drivers[name] = driver
        self._origins[name] = origin
        self._by_model.clear()

    def load_entry_points(self, points: Iterable[EntryPoint] | None = None) -> None:
        """Register every driver declared in the entry-point group (once)."""
        if self._loaded and points is None:
            return
        for point in points if points is not None else entry_points(group=self.group):
            try:
                driver = point.load()
            except Exception as exc:
                raise DriverRegistryError(
                    f"driver entry point {point.name!r} ({point.value}) failed to load: {exc}"
                ) from exc
            if driver.name != point.name:
                raise DriverRegistryError(
                    f"entry point {point.name!r} loads driver named {driver.name!r}"
                )
            dist = point.dist.name if point.dist is not None else "unknown distribution"
            self.register(driver, origin=f"{dist} ({point.value})")
        self._loaded = True

    def get(self, name: str) -> type[DeviceDriver]:
        self.load_entry_points()
        try:
            return self._drivers[name]
        except KeyError:
            known = ", ".join(sorted(self._drivers)) or "none"
            raise DriverNotFound(f"no driver named {name!r} (installed: {known})") from None

    def all(self) -> list[type[DeviceDriver]]:
        self.load_entry_points()
        return [self._drivers[name] for name in sorted(self._drivers)]

    def origin(self, name: str) -> str:
        self.load_entry_points()
        return self._origins[name]

    def for_family(self, family: str) -> type[DeviceDriver] | None:
        """The driver serving a catalogue family. A subclass that re-declares `families` (a
        site's variant of a built-in) wins over the drivers it merely inherits them from; two
        unrelated claims are an error, never a silent pick."""
        claims = [d for d in self.all() if family in d.families]
        if len(claims) > 1:
            claims = [d for d in claims if "families" in vars(d)]
            claims = [d for d in claims if not any(o is not d and issubclass(o, d) for o in claims)]
        if len(claims) > 1:
            names = ", ".join(d.name for d in claims)
            raise DriverRegistryError(
                f"family {family!r} is claimed by {names}: set the devices' `driver`"
            )
        return claims[0] if claims else None

    def for_model(self, model: str) -> type[DeviceDriver] | None:
        """The driver of a model: one that lists the model itself, else its family's. Cached
        per model until a driver is registered: a scan asks once per device, a fleet has few
        models, and the catalogue's family match is fuzzy (slow)."""
        self.load_entry_points()
        if model not in self._by_model:
            self._by_model[model] = self._match_model(model)
        return self._by_model[model]

    def _match_model(self, model: str) -> type[DeviceDriver] | None:
        wanted = squash_model(model)
        for driver in self.all():
            if any(squash_model(m) == wanted for m in driver.models):
                return driver
        family = family_for_model(model)
        return self.for_family(family.key) if family is not None else None

    def fallback(self) -> type[DeviceDriver] | None:
        """The driver for a Poly device nothing else claims (identity only), if installed."""
        return next((d for d in self.all() if d.fallback), None)

    def driver_for(self, device: Device) -> type[DeviceDriver]:
        """The inventory's driver, else the one serving the model, else the fallback."""
        if device.driver:
            return self.get(device.driver)
        driver = (self.for_model(device.model) if device.model else None) or self.fallback()
        if driver is None:
            raise DriverNotFound(f"no installed driver serves model {device.model!r}")
        return driver

    def probe_order(self) -> list[type[DeviceDriver]]:
        """The drivers discovery tries, in order, on an address SNMP identity did not place."""
        ranked = [d for d in self.all() if d.probe_order is not None]
        return sorted(ranked, key=lambda d: (d.probe_order, d.name))
