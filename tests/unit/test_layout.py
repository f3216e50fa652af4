"""tests/unit mirrors the package tree (issue 11): the unit tests of `pkg/a/b.py` are in
`tests/unit/pkg/a/test_b.py`, so a module's tests are found without a search. The tests of more
than one package (error trees, this one) stay at the top of tests/unit."""

from __future__ import annotations

from pathlib import Path

UNIT = Path(__file__).parent
ROOT = UNIT.parents[1]
PACKAGES = ("agent", "controller", "device_drivers", "inventory", "simulator")


def test_every_unit_test_file_sits_where_its_module_sits() -> None:
    misplaced = []
    for test_file in sorted(UNIT.rglob("test_*.py")):
        relative = test_file.relative_to(UNIT)
        if len(relative.parts) == 1:
            continue  # cross-package tests
        module = relative.parent / (relative.name.removeprefix("test_"))
        if relative.parts[0] not in PACKAGES or not (ROOT / module).is_file():
            misplaced.append(f"{relative} (no module {module})")
    assert misplaced == []
