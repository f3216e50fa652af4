"""Error kinds are data: each class has its own kind, and the kind says reach and retry."""

from __future__ import annotations

import inspect
import re

import pytest

from device_drivers import errors
from device_drivers.errors import (
    AuthenticationFailed,
    DeviceBusy,
    DeviceDisconnected,
    DeviceError,
    DeviceTimeout,
    DeviceUnreachable,
    ErrorKind,
    HttpStatusError,
    NotSupported,
    SnmpErrorStatus,
    TrustMismatch,
)
from device_drivers.poly._common import check_http_status
from device_drivers.transports import SnmpTarget
from device_drivers.transports.snmp import PysnmpClient

CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, DeviceError) and cls.__module__ == errors.__name__
]


def test_no_two_classes_share_a_kind_and_every_class_is_in_the_tree() -> None:
    kinds = [cls.kind for cls in CLASSES]
    assert len(set(kinds)) == len(CLASSES)
    tree = errors.__doc__ or ""
    assert [cls.__name__ for cls in CLASSES if cls.__name__ not in tree] == []


def make(cls: type[DeviceError]) -> DeviceError:
    if issubclass(cls, TrustMismatch):
        return cls("x", expected="a", actual="b")
    if "status" in inspect.signature(cls).parameters:
        return cls("x", status=500)  # type: ignore[call-arg]
    return cls("x")


def test_the_kind_decides_retries_and_reach() -> None:
    retried = {cls for cls in CLASSES if make(cls).retryable}
    assert retried == {DeviceTimeout, DeviceBusy, DeviceDisconnected}
    unreached = {kind for kind in ErrorKind if not kind.reached}
    assert {DeviceUnreachable.kind, DeviceDisconnected.kind, DeviceTimeout.kind} <= unreached
    assert {AuthenticationFailed.kind, DeviceBusy.kind, HttpStatusError.kind}.isdisjoint(unreached)


def test_stored_kinds_read_back_as_they_always_were() -> None:
    """Observations hold the kind's string; old rows must still classify."""
    assert ErrorKind("unreachable") is DeviceUnreachable.kind
    assert ErrorKind("timeout") is DeviceTimeout.kind
    assert f"{ErrorKind.AUTH_FAILED}" == "auth_failed"


@pytest.mark.parametrize("status", [500, 502, 400])
def test_an_http_error_status_carries_its_code(status: int) -> None:
    with pytest.raises(HttpStatusError, match=f"HTTP {status}") as caught:
        check_http_status(status, "GET /x")
    assert (caught.value.status, caught.value.kind.reached) == (status, True)


def test_an_http_404_stays_not_supported() -> None:
    with pytest.raises(NotSupported):
        check_http_status(404, "GET /x")


def test_an_snmp_error_status_carries_its_number() -> None:
    target = SnmpTarget("192.0.2.1")
    sys_descr, sys_name = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.5.0"
    with pytest.raises(SnmpErrorStatus, match=f"genErr for {re.escape(sys_name)}") as caught:
        PysnmpClient._check(target, False, None, 5, 2, [], [sys_descr, sys_name])
    assert (caught.value.status, caught.value.kind.reached) == (5, True)
