"""A second driver class claiming an existing name (for the duplicate-name test)."""

from __future__ import annotations

from polyfleet_example_driver import LabPhoneDriver as _Original


class LabPhoneDriver(_Original):
    """Same name, different class: the registry must refuse it."""
