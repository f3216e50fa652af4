"""controller/ has one error root, and its tree (controller/errors.py) names every class."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import controller
from controller import errors
from controller.errors import ControllerError


def controller_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(controller.__path__, "controller."):
        if info.name.endswith("__main__"):
            continue  # runs the CLI when imported
        module = importlib.import_module(info.name)
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == info.name
        ]
    return found


def test_every_controller_exception_derives_from_the_one_root() -> None:
    classes = controller_exceptions()
    assert len(classes) > 10  # the walk did find them
    assert [c.__qualname__ for c in classes if not issubclass(c, ControllerError)] == []


def test_the_tree_in_the_docstring_names_every_class() -> None:
    tree = errors.__doc__ or ""
    missing = [c.__name__ for c in controller_exceptions() if c.__name__ not in tree]
    assert missing == []
