"""Per-fleet secrets shared by the simulated devices, the licensing portal and the SSH faces.

The portal secret signs activation keys (see `activation_keys`); it exists only inside the
simulator, so drivers can never forge keys. The API token guards the licensing portal.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FleetSecrets:
    """What the devices and the portal of one simulated fleet share; never printed or logged."""

    portal_secret: bytes
    portal_token: str

    @classmethod
    def generate(cls) -> FleetSecrets:
        """Fresh secrets for a new fleet (a state file keeps them across restarts)."""
        return cls(portal_secret=secrets.token_bytes(32), portal_token=secrets.token_urlsafe(24))

    def to_json(self) -> dict[str, str]:
        """Serialisable form for the state file (mode 0600)."""
        return {"portal_secret": self.portal_secret.hex(), "portal_token": self.portal_token}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> FleetSecrets:
        """Inverse of `to_json`."""
        return cls(
            portal_secret=bytes.fromhex(data["portal_secret"]), portal_token=data["portal_token"]
        )

    def __repr__(self) -> str:
        return "FleetSecrets(<redacted>)"
