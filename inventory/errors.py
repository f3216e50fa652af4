"""Inventory error tree: one root for everything the store and the importers raise on purpose.

InventoryError
├── InvalidIdentifier     a serial or MAC that cannot be normalised (field, value, reason)
│                         (also ValueError)
├── InvalidRecord         a record that fails validation for another reason (also ValueError)
├── DeviceNotFound        no device has that serial or MAC (also LookupError)
├── IdentityConflict      serial matches one device, MAC another: never merged silently
├── ImportRefused         the whole file is unusable (unreadable, not UTF-8, empty, no ids)
├── StoreError            the database cannot be opened or migrated
├── SecretError           the secret key is missing, unreadable or wrong
├── ProfileNotFound       credential_store: no credential profile has that name (also LookupError)
├── ContractNotFound      contract_store: no contract has that number (also LookupError)
├── ConfirmationNotFound  confirmation_store: no confirmation has that number (also LookupError)
├── KeyNotFound           key_store: no stored activation key has that id (also LookupError)
├── KeyInUse              key_store: the key is claimed by another re-activation
├── DuplicateKey          key_store: that key for that serial and feature is stored already
├── TransitionRefused     reactivation_store: the operation is not in the state the step
│                         starts from (another run moved it)
├── TokenError            token_store: an API token request that cannot be met
│   └── TokenNotFound     no token has that id (also LookupError)
├── AgentNotFound         agent_store: no agent has that id or token (also LookupError)
├── JobNotFound           job_store: no job has that id (also LookupError)
└── LeaseLost             job_store: the lease named is not the job's current one

The classes above the store names live here; each store's own lives next to the store."""

from __future__ import annotations


class InventoryError(Exception):
    """Root of every error the inventory raises."""


class InvalidIdentifier(InventoryError, ValueError):
    """A serial number or MAC address that cannot be normalised."""

    def __init__(self, field: str, value: str, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field} {value!r} {reason}")


class InvalidRecord(InventoryError, ValueError):
    """A record that fails validation (a field named in the message)."""


class DeviceNotFound(InventoryError, LookupError):
    """No device in the inventory matches the given serial or MAC."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        super().__init__(f"no device with serial or MAC {device_id!r} in the inventory")


class IdentityConflict(InventoryError):
    """An incoming record's serial and MAC point at two different stored devices."""

    def __init__(self, serial: str, mac: str, serial_owner_mac: str | None, mac_owner: str) -> None:
        self.serial = serial
        self.mac = mac
        self.mac_owner = mac_owner
        super().__init__(
            f"serial {serial} is stored with MAC {serial_owner_mac or '(none)'}, "
            f"but MAC {mac} belongs to device {mac_owner}"
        )


class ImportRefused(InventoryError):
    """The import file as a whole cannot be used; nothing was written."""


class StoreError(InventoryError):
    """The database cannot be opened, reached or migrated."""


class SecretError(InventoryError):
    """The secret key that protects stored credentials is missing or wrong."""
