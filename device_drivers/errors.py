"""Device error tree: every transport translates its library's exceptions into these, once.

    DeviceError                    (carries host and, where known, serial)
    ├── DeviceConnectionError      the device could not be talked to
    │   ├── DeviceUnreachable      refused, no route, no answer at all
    │   │   └── DeviceDisconnected   it closed the connection instead of answering (retryable)
    │   └── DeviceTimeout          it answered too slowly (retryable)
    ├── AuthenticationFailed       credentials rejected: fix them, retrying will not help
    ├── TrustMismatch              the device is not the one we pinned
    │   ├── TlsFingerprintMismatch   its TLS certificate changed
    │   └── HostKeyMismatch          its SSH host key changed
    ├── MalformedReply             it answered something we cannot parse
    ├── DeviceBusy                 it said "busy" (UC Status 4001, HTTP 403 on VideoOS): retry later
    ├── ActivationRejected         it refused an activation key (reason from the device)
    └── NotSupported               this driver or device cannot do that operation

A timeout is never reported as bad credentials: callers retry `DeviceTimeout`, `DeviceBusy` and
`DeviceDisconnected` and never retry `AuthenticationFailed` or `TrustMismatch`.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Root of every device-side error; `host` says which device, `retryable` what to do."""

    retryable = False
    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        serial: str | None = None,
        answered: bool = False,
    ) -> None:
        self.host = host
        self.serial = serial
        self.message = message
        self.answered = answered
        """The device did say something (a banner, part of a reply) before this went wrong:
        discovery must not call it silent."""
        super().__init__(message)

    def __str__(self) -> str:
        where = self.serial or self.host
        return f"{where}: {self.message}" if where else self.message


class DeviceConnectionError(DeviceError):
    """The device could not be talked to."""

    kind = "unreachable"


class DeviceUnreachable(DeviceConnectionError):
    """Connection refused, no route, or no answer at all."""

    kind = "unreachable"


class DeviceDisconnected(DeviceUnreachable):
    """The device took the request and closed the connection without answering: a flaky link
    or a device shedding load. Unlike a refused connection, another try usually gets through."""

    retryable = True


class DeviceTimeout(DeviceConnectionError):
    """The device did not answer within the time allowed."""

    retryable = True
    kind = "timeout"


class AuthenticationFailed(DeviceError):
    """The device rejected the credentials."""

    kind = "auth_failed"


class TrustMismatch(DeviceError):
    """The device's identity (certificate or host key) differs from the pinned one."""

    kind = "trust_mismatch"

    def __init__(
        self,
        message: str,
        *,
        expected: str,
        actual: str,
        host: str | None = None,
        serial: str | None = None,
    ) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(message, host=host, serial=serial)


class TlsFingerprintMismatch(TrustMismatch):
    """The TLS certificate changed since it was pinned; `polyfleet inventory trust` accepts it."""

    kind = "tls_mismatch"


class HostKeyMismatch(TrustMismatch):
    """The SSH host key changed since it was pinned; `polyfleet inventory trust` accepts it."""

    kind = "host_key_mismatch"


class MalformedReply(DeviceError):
    """The device answered, but not in a form we can parse."""

    kind = "malformed"


class DeviceBusy(DeviceError):
    """The device is busy (in a call, another session) and asked us to come back later."""

    retryable = True
    kind = "busy"


class ActivationRejected(DeviceError):
    """The device refused an activation key; the message carries its reason."""

    kind = "activation_rejected"


class NotSupported(DeviceError):
    """The driver or the device cannot do this operation."""

    kind = "not_supported"
