"""device_drivers error tree: one root, so a caller can tell "the drivers refused this" from a
bug with one `except`. Every transport translates its library's exceptions into DeviceErrors, once.

DeviceDriversError
├── DeviceError                    (carries host and, where known, serial)
│   ├── DeviceConnectionError      the device could not be talked to
│   │   ├── DeviceUnreachable      refused, no route, no answer at all
│   │   │   └── DeviceDisconnected   it closed the connection instead of answering (retryable)
│   │   └── DeviceTimeout          it answered too slowly (retryable)
│   ├── AuthenticationFailed       credentials rejected: fix them, retrying will not help
│   ├── TrustMismatch              the device is not the one we pinned
│   │   ├── TlsFingerprintMismatch   its TLS certificate changed
│   │   └── HostKeyMismatch          its SSH host key changed
│   ├── MalformedReply             it answered something we cannot parse
│   ├── ProtocolError              it answered with an error status of its protocol (`status`)
│   │   ├── HttpStatusError          an HTTP status no caller handles (5xx, 400, ...)
│   │   ├── ApiStatusError           a UC API envelope `Status` other than 2000
│   │   ├── SnmpErrorStatus          an SNMP error-status (genErr, tooBig, ...)
│   │   └── CommandErrorLine         an SSH command API error line
│   ├── DeviceBusy                 it said "busy" (UC Status 4001, HTTP 403 on VideoOS): retry later
│   ├── ActivationRejected         it refused an activation key (reason from the device)
│   └── NotSupported               this driver or device cannot do that operation
├── DriverRegistryError            registry: a driver cannot be registered or found
│   ├── DriverAlreadyRegistered    two drivers claim one name
│   └── DriverNotFound             no driver of that name (also LookupError)
└── ModeledSettingsError           modeled_settings: a bad `[drivers.<name>]` section
                                   (also ValueError)

Each DeviceError class has its own `ErrorKind`, and the kind, not its spelling, says whether the
device was reached and whether another try may help: callers retry `DeviceTimeout`, `DeviceBusy`
and `DeviceDisconnected` and never retry `AuthenticationFailed` or `TrustMismatch`. A timeout is
never reported as bad credentials.

The registry and modeled-settings errors are about the drivers themselves (their configuration),
not a device: they live next to the code that raises them and carry no `ErrorKind`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    """Why a device operation failed, as data: stored and printed as its value (the strings
    scan results and observations have always carried), read through `reached`/`retryable`."""

    ERROR = "error"
    CONNECTION_FAILED = "connection_failed"
    UNREACHABLE = "unreachable"
    DISCONNECTED = "disconnected"
    TIMEOUT = "timeout"
    AUTH_FAILED = "auth_failed"
    TRUST_MISMATCH = "trust_mismatch"
    TLS_MISMATCH = "tls_mismatch"
    HOST_KEY_MISMATCH = "host_key_mismatch"
    MALFORMED = "malformed"
    PROTOCOL_ERROR = "protocol_error"
    HTTP_STATUS = "http_status"
    API_STATUS = "api_status"
    SNMP_ERROR_STATUS = "snmp_error_status"
    COMMAND_ERROR = "command_error"
    BUSY = "busy"
    ACTIVATION_REJECTED = "activation_rejected"
    NOT_SUPPORTED = "not_supported"
    # Outcomes the controller records for a device without a DeviceError behind them.
    IDENTITY_MISMATCH = "identity_mismatch"
    NO_DRIVER = "no_driver"
    INTERNAL_ERROR = "internal_error"

    @property
    def reached(self) -> bool:
        """The device was talked to (it answered something), so it is reachable."""
        return self not in _NOT_REACHED

    @property
    def retryable(self) -> bool:
        """Another try, after a pause, may succeed."""
        return self in _RETRYABLE


_NOT_REACHED = frozenset(
    {
        ErrorKind.CONNECTION_FAILED,
        ErrorKind.UNREACHABLE,
        ErrorKind.DISCONNECTED,
        ErrorKind.TIMEOUT,
        ErrorKind.NOT_SUPPORTED,  # refused for want of access or ability: no answer implied
        ErrorKind.NO_DRIVER,
        ErrorKind.INTERNAL_ERROR,
    }
)
_RETRYABLE = frozenset({ErrorKind.DISCONNECTED, ErrorKind.TIMEOUT, ErrorKind.BUSY})


class DeviceDriversError(Exception):
    """Root of every error the device drivers raise on purpose."""


class DeviceError(DeviceDriversError):
    """Root of every device-side error; `host` says which device, `kind` what to do."""

    kind: ClassVar[ErrorKind] = ErrorKind.ERROR

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

    @property
    def retryable(self) -> bool:
        """Whether another try may succeed (busy, timeout, a dropped connection)."""
        return self.kind.retryable

    def __str__(self) -> str:
        where = self.serial or self.host
        return f"{where}: {self.message}" if where else self.message


class DeviceConnectionError(DeviceError):
    """The device could not be talked to."""

    kind = ErrorKind.CONNECTION_FAILED


class DeviceUnreachable(DeviceConnectionError):
    """Connection refused, no route, or no answer at all."""

    kind = ErrorKind.UNREACHABLE


class DeviceDisconnected(DeviceUnreachable):
    """The device took the request and closed the connection without answering: a flaky link
    or a device shedding load. Unlike a refused connection, another try usually gets through."""

    kind = ErrorKind.DISCONNECTED


class DeviceTimeout(DeviceConnectionError):
    """The device did not answer within the time allowed."""

    kind = ErrorKind.TIMEOUT


class AuthenticationFailed(DeviceError):
    """The device rejected the credentials."""

    kind = ErrorKind.AUTH_FAILED


class TrustMismatch(DeviceError):
    """The device's identity (certificate or host key) differs from the pinned one."""

    kind = ErrorKind.TRUST_MISMATCH
    pin_kind: ClassVar[str] = ""
    """Which pin of the inventory (`tls`, `ssh`) the device no longer matches."""

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

    kind = ErrorKind.TLS_MISMATCH
    pin_kind = "tls"


class HostKeyMismatch(TrustMismatch):
    """The SSH host key changed since it was pinned; `polyfleet inventory trust` accepts it."""

    kind = ErrorKind.HOST_KEY_MISMATCH
    pin_kind = "ssh"


class MalformedReply(DeviceError):
    """The device answered, but not in a form we can parse."""

    kind = ErrorKind.MALFORMED


class ProtocolError(DeviceError):
    """The device answered with an error status of its protocol; `status` is that status, so
    a caller can tell a 500 from a 502 without parsing the message."""

    kind = ErrorKind.PROTOCOL_ERROR

    def __init__(
        self,
        message: str,
        *,
        status: int | str,
        host: str | None = None,
        serial: str | None = None,
        answered: bool = True,
    ) -> None:
        self.status = status
        super().__init__(message, host=host, serial=serial, answered=answered)


class HttpStatusError(ProtocolError):
    """An HTTP status no caller handles (a 5xx, an unexpected 4xx); `status` is the code."""

    kind = ErrorKind.HTTP_STATUS
    status: int


class ApiStatusError(ProtocolError):
    """A UC API reply whose envelope `Status` is an error other than busy, unsupported or
    credentials; `status` is that code (a string, as the API sends it)."""

    kind = ErrorKind.API_STATUS
    status: str


class SnmpErrorStatus(ProtocolError):
    """An SNMP reply with a non-zero error-status; `status` is its number (the message names
    the OID the error-index points at)."""

    kind = ErrorKind.SNMP_ERROR_STATUS
    status: int


class CommandErrorLine(ProtocolError):
    """An SSH command API answered with an error line; `status` is that line, verbatim."""

    kind = ErrorKind.COMMAND_ERROR
    status: str


class DeviceBusy(DeviceError):
    """The device is busy (in a call, another session) and asked us to come back later."""

    kind = ErrorKind.BUSY


class ActivationRejected(DeviceError):
    """The device refused an activation key; the message carries its reason."""

    kind = ErrorKind.ACTIVATION_REJECTED


class NotSupported(DeviceError):
    """The driver or the device cannot do this operation."""

    kind = ErrorKind.NOT_SUPPORTED
