"""Each package has one error root, and the tree in its errors.py names every class: an
adapter (CLI, API, agent) tells "the package refused this" from a bug with one `except`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import controller
import device_drivers
import inventory
import simulator
from controller.errors import ControllerError
from device_drivers.errors import DeviceDriversError
from inventory.errors import InventoryError
from simulator.errors import SimulatorError

ROOTS: list[tuple[ModuleType, type[Exception]]] = [
    (controller, ControllerError),
    (device_drivers, DeviceDriversError),
    (inventory, InventoryError),
    (simulator, SimulatorError),
]
SKIPPED = ("__main__", ".migrations.")
"""Modules that do something when imported (run the CLI, an Alembic migration)."""


def exceptions_of(package: ModuleType) -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    prefix = package.__name__ + "."
    for info in pkgutil.walk_packages(package.__path__, prefix):
        if any(part in info.name + "." for part in SKIPPED):
            continue
        module = importlib.import_module(info.name)
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == info.name
        ]
    return found


@pytest.mark.parametrize(("package", "root"), ROOTS, ids=lambda v: getattr(v, "__name__", ""))
def test_every_exception_of_a_package_derives_from_its_one_root(
    package: ModuleType, root: type[Exception]
) -> None:
    classes = exceptions_of(package)
    assert root in classes  # the walk did find them
    assert [c.__qualname__ for c in classes if not issubclass(c, root)] == []


@pytest.mark.parametrize(("package", "root"), ROOTS, ids=lambda v: getattr(v, "__name__", ""))
def test_the_tree_in_errors_py_names_every_class(
    package: ModuleType, root: type[Exception]
) -> None:
    tree = importlib.import_module(package.__name__ + ".errors").__doc__ or ""
    assert root.__module__ == package.__name__ + ".errors"
    missing = [c.__name__ for c in exceptions_of(package) if c.__name__ not in tree]
    assert missing == []
