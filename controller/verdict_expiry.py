"""Until when a device's verdict stays what `controller.health.classify` gave: its status and
its reason text, for the same device and stored status.

A verdict depends on the clock only through how far `now` is from a few stored times: each
license's expiry (warning window, expiry, and the reason's "in N days" or, on its last day,
"in N hours"), and the last observation (staleness, then "N minutes/hours/days ago"). The
earliest moment any of those could change is when the verdict may; before it, `classify`
answers the same at any `now`. Every stored time of the row counts, whether `classify` used it
or not: the answer may come early, never late. A response cache keeps a page until the earliest
of its rows' (controller.api.response_cache).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from controller.health import DeviceLike, HealthPolicy, StatusLike

_US = timedelta(microseconds=1)
_MINUTE, _HOUR, _DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
_MARGIN = timedelta(milliseconds=1)
"""Taken off every boundary: `classify` divides float seconds, which may round across one."""


def _before_expiry(expires_at: datetime, now: datetime, policy: HealthPolicy) -> datetime:
    """The first moment after `now` the verdict on a license expiring at `expires_at` (in the
    future) may read differently: the warning window opens, the whole days left (or, in its
    last day, the hours left, rounded up) drop, or it expires."""
    left = (expires_at - now) // _US
    if left > _DAY // _US:  # "in N days": N = whole days left, drops at each whole day
        change = expires_at - (left // (_DAY // _US)) * _DAY
    else:  # "in N hours": N = hours left rounded up, drops at each whole hour (0: expired)
        change = expires_at - ((left - 1) // (_HOUR // _US)) * _HOUR
    window = expires_at - policy.warn
    return min(change, window) if window > now else change


def _after_observation(observed_at: datetime, now: datetime, policy: HealthPolicy) -> datetime:
    """The first moment after `now` a verdict on a device last observed at `observed_at` may
    read differently: it turns stale, or its age ("N minutes/hours/days ago") grows a unit."""
    stale_at = observed_at + policy.max_age
    if now <= stale_at:
        return stale_at
    age = now - observed_at
    unit = _MINUTE if age < 2 * _HOUR else _HOUR if age < 2 * _DAY else _DAY
    return observed_at + (age // unit + 1) * unit


def verdict_valid_until(
    device: DeviceLike, status: StatusLike | None, now: datetime, policy: HealthPolicy
) -> datetime | None:
    """The moment before which `classify(device, status, t, policy)` is the same for every
    `now <= t`, or None if it never changes with time (e.g. never scanned)."""
    moments: list[datetime] = []
    observed: list[datetime | None] = [device.last_seen]
    if status is not None:
        observed.append(status.observed_at)
        for lic in status.licenses:
            observed.append(lic.observed_at)
            expires_at = lic.expires_at
            if expires_at is not None and expires_at > now:
                moments.append(_before_expiry(expires_at, now, policy))
    moments += (_after_observation(t, now, policy) for t in observed if t is not None)
    return min(moments) - _MARGIN if moments else None


def earliest(moments: Iterable[datetime | None]) -> datetime | None:
    """The earliest of `moments` that are set (None: none is)."""
    return min((m for m in moments if m is not None), default=None)
