"""What the API's handlers share, held by the aiohttp application under one key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from controller.api.metrics import Metrics
from controller.settings import PolyfleetSettings
from inventory.store import InventoryStore
from inventory.token_store import TokenStore


@dataclass(slots=True)
class Services:
    """The store (opened and migrated by the caller of create_app), tokens, settings, metrics."""

    store: InventoryStore
    tokens: TokenStore
    settings: PolyfleetSettings
    metrics: Metrics


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
