"""ResponseCache: an entry serves only its generation, until its deadline, within its byte cap."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from controller.api.response_cache import Computed, ResponseCache

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def cache(max_bytes: int = 1000, max_age: float = 60.0) -> ResponseCache:
    return ResponseCache(max_bytes=max_bytes, max_age=max_age, clock=lambda: NOW)


def test_an_answer_serves_its_generation_only() -> None:
    kept = cache()
    kept.put("k", b"page", generation=7, now=NOW, valid_until=None)
    assert kept.get("k", 7) is not None
    assert kept.get("k", 8) is None
    assert kept.get("k", 7) is None  # dropped once a newer generation was seen


def test_an_answer_older_than_the_kept_one_does_not_replace_it() -> None:
    kept = cache()
    kept.put("k", b"new", generation=8, now=NOW, valid_until=None)
    kept.put("k", b"old", generation=7, now=NOW, valid_until=None)
    entry = kept.get("k", 8)
    assert entry is not None
    assert entry.body == b"new"


def test_an_answer_ends_when_a_verdict_may_change() -> None:
    kept = cache()
    kept.put("k", b"page", generation=1, now=NOW, valid_until=NOW + timedelta(minutes=5))
    assert kept.get("k", 1) is not None
    kept.clock = lambda: NOW + timedelta(minutes=5)
    assert kept.get("k", 1) is None
    kept.put("k", b"page", generation=1, now=NOW, valid_until=NOW)  # stale at once: not kept
    assert len(kept) == 0


def test_an_answer_ends_at_its_max_age() -> None:
    kept = cache(max_age=1e-9)
    kept.put("k", b"page", generation=1, now=NOW, valid_until=None)
    assert kept.get("k", 1) is None


def test_memory_is_bounded_least_recently_used_first() -> None:
    kept = cache(max_bytes=800)
    for n in range(20):
        kept.put(n, b"x" * 100, generation=1, now=NOW, valid_until=None)
        assert kept.get(0, 1) is not None  # used each time: kept
    assert kept.size <= 800
    assert len(kept) == 8
    assert kept.get(0, 1) is not None
    assert kept.get(1, 1) is None
    assert kept.get(19, 1) is not None
    kept.put("big", b"x" * 101, generation=1, now=NOW, valid_until=None)  # over an eighth
    assert kept.get("big", 1) is None


def test_an_exact_answer_outlives_the_max_age() -> None:
    kept = cache(max_age=1e-9)
    kept.put("k", b"page", generation=1, now=NOW, valid_until=None, exact=True)
    assert kept.get("k", 1) is not None


async def test_concurrent_misses_of_one_answer_compute_it_once() -> None:
    kept = cache()
    computed = []
    release = asyncio.Event()

    async def compute() -> Computed:
        computed.append(1)
        await release.wait()
        return Computed(b"page", NOW, None, exact=True)

    first = asyncio.ensure_future(kept.fetch("k", 1, compute))
    second = asyncio.ensure_future(kept.fetch("k", 1, compute))
    await asyncio.sleep(0)
    release.set()
    (entry, how), (joined, how_joined) = await first, await second
    assert (how, how_joined, len(computed)) == ("miss", "joined", 1)
    assert joined is entry
    assert (await kept.fetch("k", 1, compute))[1] == "hit"
    assert (await kept.fetch("k", 2, compute))[1] == "miss"  # another generation


async def test_a_failed_computation_is_not_kept_and_the_next_one_runs() -> None:
    kept = cache()

    async def failing() -> Computed:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        await kept.fetch("k", 1, failing)
    assert len(kept) == 0

    async def working() -> Computed:
        return Computed(b"page", NOW, None, exact=False)

    assert (await kept.fetch("k", 1, working))[1] == "miss"
