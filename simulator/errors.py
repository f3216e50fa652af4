"""Simulator error tree: one root for what the simulated fleet refuses on purpose.

    SimulatorError
    ├── FaultSpecError    faults: a `--faults` value that cannot be used (also ValueError)
    ├── MixError          fleet: a `--mix` or `--license-mix` value that cannot be used
    │                     (also ValueError)
    └── Refusal           portal: why the simulated licensing portal will not issue a key
                          (`status` is the HTTP status it answers with)

Each class lives next to the code that raises it.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of every error the simulator raises on purpose."""
