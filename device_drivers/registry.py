"""The driver registry: drivers come from the `polyfleet.drivers` entry-point group.

A third-party package adds a driver by declaring an entry point in that group; nothing of ours
changes. Two drivers with the same name are an error, never a silent override. Registry state
lives on the instance (nornir keeps it in a shared class attribute; we don't).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from device_drivers.base import DeviceDriver

ENTRY_POINT_GROUP = "polyfleet.drivers"


class DriverRegistryError(Exception):
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
