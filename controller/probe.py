"""`probe`: every read-only call a device's driver uses, with what the device answered to each.

For sites bringing up real hardware: the drivers' modeled calls (license state, option keys)
are guesses agreed with the simulator, and a real device may answer them with a 404 or an error
line. `probe` runs the driver's read-only operations (identify, read_licenses and the reads that
an activation would start with) through recording transports, so every HTTP request, SNMP get
or walk and SSH command is listed with whether it is documented or modeled, what came back and
what the driver concluded. Nothing is applied and nothing is written to the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field, model_serializer

from controller.device_session import SessionFactory
from device_drivers import identity_oids
from device_drivers.base import DeviceDriver
from device_drivers.context import DriverContext
from device_drivers.errors import DeviceError
from device_drivers.transports import (
    HttpClient,
    HttpReply,
    HttpTarget,
    SnmpClient,
    SnmpScalar,
    SnmpTarget,
    SshClient,
    SshSession,
    SshTarget,
)
from inventory.models import Device

ANSWER_CHARS = 72
"""How much of a reply the table shows: enough to tell JSON from an error page."""

_OID_NAMES: dict[str, str] = {
    value: name.lower()
    for name, value in vars(identity_oids).items()
    if name.isupper() and isinstance(value, str) and value[:1].isdigit()
}


def oid_name(oid: str) -> str:
    """`IDENTITY_DEVICE_MODEL` → `identity_device_model (1.3.6...)`, else the OID itself."""
    name = _OID_NAMES.get(oid)
    return f"{name} ({oid})" if name else oid


def snippet(text: str) -> str:
    """The first bytes of a reply on one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= ANSWER_CHARS else flat[: ANSWER_CHARS - 1] + "…"


class ProbedCall(BaseModel):
    """One call on the wire: what was asked, what came back, what the driver made of it.
    Serialised, it is one of `probe -o json`'s `calls` (with `documented`, the opposite of
    `modeled`, for scripts that ask the positive question)."""

    operation: str
    call: str
    modeled: bool
    answered: bool
    answer: str
    conclusion: str = ""

    @model_serializer
    def _call(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "call": self.call,
            "documented": not self.modeled,
            "modeled": self.modeled,
            "answered": self.answered,
            "answer": self.answer,
            "conclusion": self.conclusion,
        }


class ProbedOperation(BaseModel):
    """One driver operation and its outcome."""

    name: str
    ok: bool
    detail: str


class ProbeReport(BaseModel):
    """Everything `probe` learnt about one device; serialised, `probe -o json`'s document."""

    serial: str
    host: str | None
    driver: str
    abilities: list[str]
    calls: list[ProbedCall] = Field(default_factory=list)
    operations: list[ProbedOperation] = Field(default_factory=list)
    modeled_calls: dict[str, str] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    """The modeled parameters in force for this driver (defaults or the config file's)."""

    @property
    def ok(self) -> bool:
        """Every operation the driver needs answered (exit 0)."""
        return bool(self.operations) and all(op.ok for op in self.operations)

    def failing_calls(self) -> list[ProbedCall]:
        return [c for c in self.calls if not c.conclusion.startswith(("ok", "answered"))]

    @model_serializer
    def _report(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "host": self.host,
            "driver": self.driver,
            "ok": self.ok,
            "abilities": self.abilities,
            "operations": [o.model_dump() for o in self.operations],
            "calls": [c.model_dump() for c in self.calls],
            "modeled_calls": self.modeled_calls,
            "settings": self.settings,
        }


class CallLog:
    """Where the recording transports write; `operation` names the driver operation running."""

    def __init__(self, modeled: Callable[[str], bool]) -> None:
        self.modeled = modeled
        self.operation = ""
        self.calls: list[ProbedCall] = []

    def add(self, call: str, answered: bool, answer: str, *, modeled_key: str) -> None:
        self.calls.append(
            ProbedCall(
                operation=self.operation,
                call=call,
                modeled=self.modeled(modeled_key),
                answered=answered,
                answer=answer,
            )
        )

    def failed(self, call: str, exc: DeviceError, *, modeled_key: str) -> None:
        answered = exc.answered or exc.kind.reached
        self.add(call, answered, f"{exc.kind}: {snippet(exc.message)}", modeled_key=modeled_key)


class RecordingHttp:
    """An HttpClient that logs every request and its status and first bytes."""

    def __init__(self, inner: HttpClient, log: CallLog) -> None:
        self._inner = inner
        self._log = log

    async def request(
        self,
        target: HttpTarget,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> HttpReply:
        call = f"{method} {path}"
        try:
            reply = await self._inner.request(
                target, method, path, json=json, headers=headers, cookies=cookies, data=data
            )
        except DeviceError as exc:
            self._log.failed(call, exc, modeled_key=call)
            raise
        body = snippet(reply.body[:200].decode("utf-8", "replace"))
        self._log.add(call, True, f"HTTP {reply.status} {body}".strip(), modeled_key=call)
        return reply

    async def close(self) -> None:
        """The wrapped client is closed by its owner."""


class RecordingSnmp:
    """An SnmpClient that logs every GET (per-OID noSuchObject) and walk (row count)."""

    def __init__(self, inner: SnmpClient, log: CallLog) -> None:
        self._inner = inner
        self._log = log

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpScalar]:
        call = "SNMP GET " + ", ".join(oid_name(o) for o in oids)
        try:
            values = await self._inner.get(target, oids)
        except DeviceError as exc:
            self._log.failed(call, exc, modeled_key=call)
            raise
        missing = [oid_name(o) for o in oids if values.get(o) is None]
        got = [f"{values[o]!s}" for o in oids if values.get(o) is not None]
        answer = snippet("; ".join(got)) if got else ""
        if missing:
            answer = f"{answer}; noSuchObject: {', '.join(missing)}".lstrip("; ")
        self._log.add(call, True, answer or "(empty)", modeled_key=call)
        return values

    async def walk(self, target: SnmpTarget, base_oid: str) -> list[tuple[str, SnmpScalar]]:
        call = f"SNMP WALK {oid_name(base_oid)}"
        try:
            rows = await self._inner.walk(target, base_oid)
        except DeviceError as exc:
            self._log.failed(call, exc, modeled_key=call)
            raise
        first = f": {snippet(str(rows[0][1]))}" if rows else ""
        self._log.add(call, True, f"{len(rows)} row(s){first}", modeled_key=call)
        return rows

    async def close(self) -> None:
        """The wrapped client is closed by its owner."""


class _RecordingSession:
    """An SshSession whose commands are logged with the reply's first line."""

    def __init__(self, inner: SshSession, log: CallLog) -> None:
        self._inner = inner
        self._log = log
        self.banner = inner.banner

    async def command(self, line: str) -> str:
        call = f"SSH {line}"
        try:
            reply = await self._inner.command(line)
        except DeviceError as exc:
            self._log.failed(call, exc, modeled_key=line)
            raise
        first = next((x.strip() for x in reply.splitlines() if x.strip()), "(empty reply)")
        self._log.add(call, True, snippet(first), modeled_key=line)
        return reply

    async def close(self) -> None:
        await self._inner.close()


class RecordingSsh:
    """An SshClient that logs the login and banner, and wraps sessions to log commands."""

    def __init__(self, inner: SshClient, log: CallLog) -> None:
        self._inner = inner
        self._log = log

    async def open(self, target: SshTarget) -> SshSession:
        call = "SSH login, banner"
        try:
            session = await self._inner.open(target)
        except DeviceError as exc:
            self._log.failed(call, exc, modeled_key=call)
            raise
        first = next((x.strip() for x in session.banner.splitlines() if x.strip()), "(no banner)")
        self._log.add(call, True, snippet(first), modeled_key=call)
        return _RecordingSession(session, self._log)

    async def close(self) -> None:
        """The wrapped client is closed by its owner."""


def modeled_matcher(
    modeled_calls: Mapping[str, str], params: Mapping[str, Any] | None = None
) -> Callable[[str], bool]:
    """Whether a call is one the driver declares modeled: its text appears in a description
    that says "(modeled", or it uses a route or command of the modeled parameters in force."""
    described = [text for text in modeled_calls.values() if "(modeled" in text]
    routes = [
        str(value).split("{", 1)[0].strip()
        for key, value in (params or {}).items()
        if key.endswith(("_path", "_command")) and str(value).strip()
    ]

    def modeled(call: str) -> bool:
        if any(call in text for text in described):
            return True
        return any(call == route or call.endswith(f" {route}") for route in routes)

    return modeled


def recording_context(context: DriverContext, log: CallLog) -> DriverContext:
    """The same context with every transport wrapped to record its calls."""
    context.http = RecordingHttp(context.http, log) if context.http is not None else None
    context.snmp = RecordingSnmp(context.snmp, log) if context.snmp is not None else None
    context.ssh = RecordingSsh(context.ssh, log) if context.ssh is not None else None
    return context


async def _operation(
    report: ProbeReport,
    log: CallLog,
    name: str,
    run: Callable[[], Awaitable[str]],
    named: tuple[str, bool] | None = None,
) -> None:
    """Run one read-only operation; its outcome becomes the conclusion of its calls. `named`
    (call, modeled) names the call in the table when the driver could not even make it."""
    log.operation = name
    first = len(log.calls)
    try:
        detail = await run()
        ok = True
    except DeviceError as exc:
        detail, ok = f"{exc.kind}: {exc.message}", False
    report.operations.append(ProbedOperation(name=name, ok=ok, detail=detail))
    mine = log.calls[first:]
    for index, call in enumerate(mine):
        last = index == len(mine) - 1
        if ok:
            call.conclusion = f"ok: {detail}" if last else "answered"
        elif last:
            call.conclusion = f"FAILED: {detail}"
        else:
            call.conclusion = "answered"
    if not mine:  # the driver refused before any call (no access for it)
        text, modeled = named if named is not None else (f"({name})", False)
        log.calls.append(
            ProbedCall(
                operation=name, call=text, modeled=modeled, answered=False, answer="not attempted"
            )
        )
        log.calls[-1].conclusion = ("ok: " if ok else "FAILED: ") + detail


async def probe_device(
    driver: DeviceDriver, log: CallLog, *, settings: Mapping[str, Any] | None = None
) -> ProbeReport:
    """Run every read-only operation of `driver` (built on a `recording_context`)."""
    device = driver.ctx.device
    report = ProbeReport(
        serial=device.serial,
        host=device.host,
        driver=driver.name,
        abilities=sorted(c.value for c in driver.abilities()),
        modeled_calls=dict(driver.modeled_calls),
        settings=dict(settings) if settings is not None else driver.params.model_dump(),
    )

    async def identify() -> str:
        facts = await driver.identify()
        parts = [f"serial {facts.serial}"]
        parts += [f"model {facts.model}"] if facts.model else []
        parts += [f"MAC {facts.mac}"] if facts.mac else []
        parts += [f"product group {facts.product_group}"] if facts.product_group else []
        return ", ".join(parts)

    async def read_licenses() -> str:
        licenses = await driver.read_licenses()
        states = ", ".join(f"{lic.feature}={lic.state.value}" for lic in licenses)
        return f"{len(licenses)} feature(s){': ' + states if states else ''}"

    try:
        await _operation(report, log, "identify", identify)
        await _operation(report, log, "read_licenses", read_licenses, driver.license_call())
        if driver.activation_reads:
            await _operation(
                report, log, "apply_activation (reads only)", driver.read_for_activation
            )
    finally:
        await driver.close()
    report.calls = log.calls
    return report


async def probe_inventory_device(sessions: SessionFactory, device: Device) -> ProbeReport:
    """The device's driver, wired like a scan's, with every call recorded (the use case,
    `controller.usecases.probe`, finds the device and its profiles).
    Raises LookupError when its driver is not installed."""
    driver_cls = sessions.registry.driver_for(device)
    log = CallLog(modeled_matcher(driver_cls.modeled_calls, driver_cls.params_in_force()))
    driver = driver_cls(recording_context(sessions.context(device), log))
    return await probe_device(driver, log)
