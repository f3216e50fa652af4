"""`verdict_valid_until`: before the moment it gives, `classify` says the same (status and
reason) at any later `now`; a page cached until then is what a fresh listing would answer."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.health import classify
from controller.verdict_expiry import verdict_valid_until
from inventory.models import LicenseState
from tests.unit.controller.health_cases import NOW, POLICY, device, lic, status

OFFSETS = st.timedeltas(
    min_value=-timedelta(days=70), max_value=timedelta(days=70)
) | st.timedeltas(min_value=-timedelta(days=2), max_value=timedelta(days=2))
"""Far (warning window, days) and near (staleness, hours and minutes) times."""
LICENSES = st.lists(
    st.tuples(st.sampled_from(list(LicenseState)), st.none() | OFFSETS, OFFSETS),
    max_size=3,
)


@settings(max_examples=400, deadline=None)
@given(
    licenses=LICENSES,
    observed=OFFSETS,
    reachable=st.booleans(),
    last_seen=st.none() | OFFSETS,
    later=st.floats(min_value=0.0, max_value=1.0),
)
def test_the_verdict_holds_until_the_moment_given(
    licenses: list[tuple[LicenseState, timedelta | None, timedelta]],
    observed: timedelta,
    reachable: bool,
    last_seen: timedelta | None,
    later: float,
) -> None:
    the_device = device(last_seen=None if last_seen is None else NOW + min(last_seen, -last_seen))
    stored = status(
        *(
            lic(f"f{i}", state, None if exp is None else NOW + exp, NOW - abs(seen))
            for i, (state, exp, seen) in enumerate(licenses)
        ),
        observed_at=NOW - abs(observed),
        reachable=reachable,
        error=None if reachable else "timeout",
    )
    until = verdict_valid_until(the_device, stored, NOW, POLICY)
    end = until if until is not None else NOW + timedelta(days=400)
    if end <= NOW:
        return
    moment = NOW + (end - NOW) * later
    if moment >= end:
        return
    before, after = (
        classify(the_device, stored, NOW, POLICY),
        classify(the_device, stored, moment, POLICY),
    )
    assert (after.status, after.reason) == (before.status, before.reason)


def test_a_license_expiring_in_ten_and_a_half_days_holds_half_a_day() -> None:
    """The reason says "in 10 days" until 10 days are left: not a shorter, useless bound."""
    stored = status(lic(expires_at=NOW + timedelta(days=10, hours=12)), observed_at=NOW)
    until = verdict_valid_until(device(), stored, NOW, POLICY)
    assert until is not None
    assert timedelta(hours=11) < until - NOW <= timedelta(hours=12)


def test_a_license_expiring_in_a_minute_holds_no_longer() -> None:
    stored = status(lic(expires_at=NOW + timedelta(minutes=1)), observed_at=NOW)
    until = verdict_valid_until(device(), stored, NOW, POLICY)
    assert until is not None
    assert until - NOW <= timedelta(minutes=1)
    assert classify(device(), stored, NOW + timedelta(minutes=1), POLICY).status.value == (
        "CRITICAL"
    )
