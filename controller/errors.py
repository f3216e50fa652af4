"""Controller error tree: one root, so an adapter (CLI, API, agent) can tell "the controller
refused this, with a message for the user" from a bug with a single `except`.

    ControllerError
    ├── ConfigError                 settings: the config file is unreadable or invalid
    ├── PolicyError                 policy: the policy file is unreadable or invalid
    ├── UnknownCountry              holiday_data: no holiday calendar for that country
    │                               (also ValueError)
    ├── DiscoveryError              discovery: unusable address list (also ValueError)
    ├── CheckpointError             confirmations: a checkpoint cannot be made or read
    │   └── CheckpointForged          its signature does not verify
    ├── LockHeld                    run_lock: another run holds the lock
    ├── LockUnavailable             run_lock: the lock file cannot be created or opened
    ├── EntitlementError            entitlements: no activation key obtained
    │   ├── EntitlementRefused        the provider will not issue one
    │   └── EntitlementUnavailable    no answer to act on (retry later)
    ├── WrongDevice                 reactivation: another device answers at the address
    │                               (also a device_drivers DeviceError, kind identity_mismatch)
    ├── LedgerUnavailable           reactivation: the ledger cannot be asked (a site agent's
    │                               controller unreachable, or its job's lease gone)
    ├── LedgerCallRefused           agent_ledger: a ledger call the agent's job may not make
    ├── InvalidOption               cli.health_cmd: an option value that cannot be used
    ├── NoLicenseOnRecord           usecases.reactivate: a device named without a feature has
    │                               no license on record (also LookupError)
    ├── JobFailed                   jobs: a job cannot be run as asked (its `error`)
    ├── Problem                     api.problems: an HTTP error answer (RFC 9457 problem)
    └── ServeError                  api.server: `serve` cannot listen or load its certificate

Each class lives next to the code that raises it; the classes that were ValueErrors still are.
"""

from __future__ import annotations


class ControllerError(Exception):
    """Root of every error the controller raises on purpose."""
