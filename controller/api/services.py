"""What the API's handlers share, held by the aiohttp application under one key."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from controller.api.metrics import Metrics
from controller.api.problems import Problem
from controller.health import HealthPolicy
from controller.policy import Policy, PolicyError, load_policy
from controller.settings import PolyfleetSettings
from inventory.store import InventoryStore
from inventory.token_store import TokenStore

log = logging.getLogger(__name__)

AgentsLastSeen = Callable[[], Awaitable[dict[str, datetime]]]
"""site -> when an agent of that site was last heard from (filled in by the jobs routes)."""


class QueueBell:
    """Rung when this process queues a job, so the agents' long polls waiting here look at the
    queue at once instead of at their next look (a job queued through another controller is
    found at the next look)."""

    def __init__(self) -> None:
        self._next = asyncio.Event()

    def ring(self) -> None:
        self._next.set()
        self._next = asyncio.Event()

    def next_ring(self) -> asyncio.Event:
        """Set at the next ring: taken before looking at the queue, so that a job queued while
        the poll looks is not missed."""
        return self._next

    @staticmethod
    async def wait(ring: asyncio.Event, seconds: float) -> None:
        """Until `ring` is set, or `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ring.wait(), seconds)


@dataclass(slots=True)
class Services:
    """The store (opened and migrated by the caller of create_app), tokens, settings, metrics."""

    store: InventoryStore
    tokens: TokenStore
    settings: PolyfleetSettings
    metrics: Metrics
    agents_last_seen: AgentsLastSeen | None = None
    queued: QueueBell = field(default_factory=QueueBell)
    _policy: Policy | None = field(default=None, repr=False)

    def policy(self) -> Policy:
        """The re-activation policy of the settings (`policy` file, else the shipped one),
        loaded on first use; an unusable file is a 500 whose details stay in the log."""
        if self._policy is None:
            try:
                self._policy = load_policy(self.settings.policy)
            except PolicyError as exc:
                log.error("policy file unusable: %s", exc)
                raise Problem(
                    500, "the controller's policy file is unusable; see its log"
                ) from None
        return self._policy

    def health_policy(self) -> HealthPolicy:
        """`health`'s default thresholds with the policy's models that have no licenses."""
        policy = self.policy()
        declared = policy.no_licensed_features if policy.licensing.no_licensed_features else None
        return HealthPolicy(no_licensed_features=declared)


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
