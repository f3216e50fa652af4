"""A cache of whole API answers (JSON bytes) that never serves one the store would not give.

An entry is keyed by the canonical query (the validated parameters) and by what the caller may
see (role and site of the token), and is kept with

* the store's **data generation** it was computed at: on PostgreSQL a sequence that every write
  to what the answer reads advances (migration 0013), read with the token check every request
  runs anyway (one round trip). The answer is computed in a snapshot taken after that read,
  so a write counted in the generation is either in the answer or was still uncommitted;
* a **deadline**: the earliest moment a health verdict in it could read differently with time
  (controller.verdict_expiry).

The one race a generation cannot see is a write whose statement had advanced the generation but
had not committed when the answer's snapshot was taken. So before computing, the cache's user
asks PostgreSQL whether any transaction is in flight (`pg_direct.writes_in_flight`, after the
generation was read, before the answer's snapshot): if none, every write counted in the
generation had committed and the answer is exact for it. If some were (of any database of the
server: the check cannot tell whose), the answer is kept at most `max_age` seconds: the
staleness bound of that race.

A lookup with another generation or past the deadline is a miss: the answer is computed and
kept (concurrent misses of one key and generation compute it once, the others wait for it).
Authentication is not cached: the token check (revocation included) runs on every request
before the lookup. Entries are dropped least recently used first beyond `max_bytes` of answers.
SQLite has no generation (it would need `PRAGMA data_version` on every pooled connection plus
the process's own writes): there the controller does not cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached answer."""

    body: bytes
    etag: str
    generation: int
    computed_at: float
    """`time.monotonic()` when computed (the `Age` header, and `max_age`)."""
    deadline: float
    """`time.monotonic()` from which it is stale (`max_age`)."""
    valid_until: datetime | None
    """The moment of `clock` from which a verdict in it may read differently."""

    def stale(self, now: datetime) -> bool:
        until = self.valid_until
        return time.monotonic() >= self.deadline or (until is not None and now >= until)


@dataclass(frozen=True, slots=True)
class Computed:
    """A freshly computed answer, as `ResponseCache.fetch`'s `compute` gives it."""

    body: bytes
    now: datetime
    """The moment (of the cache's `clock`) it was computed for."""
    valid_until: datetime | None
    """From when a health verdict in it may read differently (None: never by time)."""
    exact: bool
    """Computed in a snapshot taken while no write was in flight: valid for its generation
    without the `max_age` bound."""


def etag_of(body: bytes) -> str:
    """A strong entity tag of an answer's bytes."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def json_answer(
    request: web.Request, body: bytes, etag: str, *, age: int | None = None
) -> web.Response:
    """`body` as the JSON answer with its entity tag, or 304 if the request's `If-None-Match`
    names it. Clients revalidate every time (`no-cache`): the answer is private to the token's
    scope and only the controller knows when it changes."""
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if age is not None:
        headers["Age"] = str(age)
    wanted = request.headers.get("If-None-Match")
    if wanted is not None and (
        wanted.strip() == "*" or etag in (tag.strip() for tag in wanted.split(","))
    ):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=body, headers=headers, content_type="application/json", charset="utf-8"
    )


class ResponseCache:
    """Answers by key, valid for one store generation until a deadline; LRU within a byte cap."""

    def __init__(
        self,
        *,
        max_bytes: int,
        max_age: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        """The wall clock answers are computed at (tests shift it)."""
        self.size = 0
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._flights: dict[tuple[Hashable, int], asyncio.Future[Entry | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, generation: int) -> Entry | None:
        """The entry of `key` if computed at `generation` and not past its deadline."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.generation != generation or entry.stale(self.clock()):
            if entry.generation <= generation:  # never to be valid again
                self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    async def fetch(
        self, key: Hashable, generation: int, compute: Callable[[], Awaitable[Computed]]
    ) -> tuple[Entry, str]:
        """The answer of `key` at `generation` and how it was found: "hit" (kept), "joined"
        (another request of the same key and generation was computing it) or "miss"
        (`compute`d here, after `generation` was read, and kept)."""
        entry = self.get(key, generation)
        if entry is not None:
            return entry, "hit"
        flight = self._flights.get((key, generation))
        if flight is not None:
            joined = await asyncio.shield(flight)  # our cancellation must not cancel theirs
            if joined is not None:
                return joined, "joined"
        flight = self._flights[key, generation] = asyncio.get_running_loop().create_future()
        entry = None
        try:
            done = await compute()
            entry = self.put(key, done.body, generation=generation, now=done.now,
                             valid_until=done.valid_until, exact=done.exact)  # fmt: skip
            return entry, "miss"
        finally:  # a failed computation: the others compute their own (nothing kept)
            flight.set_result(entry)
            if self._flights.get((key, generation)) is flight:
                del self._flights[key, generation]

    def put(
        self,
        key: Hashable,
        body: bytes,
        *,
        generation: int,
        now: datetime,
        valid_until: datetime | None,
        exact: bool = False,
    ) -> Entry:
        """Keep `body`, computed at `now` (of `clock`) in a snapshot taken after `generation`
        was read, whose content holds until `valid_until` (None: no time dependence). Unless
        `exact` (no write was in flight when that snapshot was taken), it is kept at most
        `max_age` seconds (each entry a random 50-100 % of it, so that answers computed
        together do not all expire together)."""
        started = time.monotonic()
        lasts = math.inf if exact else self.max_age * (0.5 + random.random() / 2)
        entry = Entry(body, etag_of(body), generation, started, started + lasts, valid_until)
        if entry.stale(now) or len(body) > self.max_bytes // 8:
            return entry  # not worth keeping: stale at once, or most of the cache
        kept = self._entries.get(key)
        if kept is not None and kept.generation > generation:
            return entry  # computed before a newer answer was put
        if kept is not None:
            self._drop(key)
        self._entries[key] = entry
        self.size += len(body)
        while self.size > self.max_bytes:
            self._drop(next(iter(self._entries)))
        return entry

    def _drop(self, key: Hashable) -> None:
        self.size -= len(self._entries.pop(key).body)
