"""Simulated Poly licensing portal: issues serial-bound activation keys where contracts allow.

It stands in for the vendor's product-activation site (poly-device-apis.md 2.3: a key code valid
only for one serial). API, all with `Authorization: Bearer <token>`:

* `POST /api/v1/keys` `{"serial", "feature"}` -> 201 `{"serial", "feature", "key", "expires_at",
  "contract"}`; 403 `{"error", "reason"}` when no active contract covers the serial; 404 unknown
  serial; 400 bad input or a feature the model does not offer. With an `Idempotency-Key` header,
  a repeated request gets the first answer again (200, `Idempotent-Replayed: true`) and no second
  key; the same header on a request for another serial or feature is refused with 422.
* `GET /api/v1/keys.csv[?all_entitled=1]` -> CSV `serial,feature,key,expires_at` of issued keys
  (with `all_entitled`, first issues a key for every entitled serial and feature): the offline flow.
* `GET /api/v1/entitlements/{serial}` -> the contracts covering a serial.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from simulator.activation_keys import issue_key
from simulator.context import FleetSecrets
from simulator.contracts import SimContract
from simulator.errors import SimulatorError
from simulator.licensing import FEATURES_BY_FAMILY, end_of_day
from simulator.state import SimDevice

KEYS_CSV_COLUMNS: tuple[str, ...] = ("serial", "feature", "key", "expires_at")
MAX_ISSUED = 200_000
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key the portal handed out."""

    serial: str
    feature: str
    key: str
    expires_at: datetime
    contract: str


class Refusal(SimulatorError):
    """Why the portal will not issue a key; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason


class Portal:
    """Entitlement checks and the record of issued keys (kept in the runner's state file)."""

    def __init__(
        self,
        devices: Sequence[SimDevice],
        contracts: Sequence[SimContract],
        fleet_secrets: FleetSecrets,
        *,
        today: Callable[[], date] | None = None,
    ) -> None:
        self._families = {d.serial.upper(): d.family for d in devices}
        self._contracts = list(contracts)
        self._secrets = fleet_secrets
        self._today = today or (lambda: datetime.now(UTC).date())
        self.issued: list[IssuedKey] = []
        self._answered: dict[str, IssuedKey] = {}
        """Idempotency key -> the key issued under it (bounded like `issued`)."""

    def covering(self, serial: str) -> list[SimContract]:
        """Contracts that name this serial, active or not."""
        wanted = serial.upper()
        return [c for c in self._contracts if wanted in c.serials]

    def issue(self, serial: str, feature: str) -> IssuedKey:
        """Issue a key valid through the end of the covering contract, or raise `Refusal`."""
        serial = serial.strip().upper()
        family = self._families.get(serial)
        if family is None:
            raise Refusal(404, "unknown_serial", f"no registered product with serial {serial}")
        if feature not in FEATURES_BY_FAMILY.get(family, ()):
            reason = f"feature {feature!r} is not offered for {serial}"
            raise Refusal(400, "unknown_feature", reason)
        today = self._today()
        covering = self.covering(serial)
        active = sorted((c for c in covering if c.active_on(today)), key=lambda c: c.end)
        if not active:
            if covering:
                last = max(covering, key=lambda c: c.end)
                reason = f"contract {last.number} ({last.kind.value}) ended on {last.end}"
                raise Refusal(403, "contract_expired", reason)
            raise Refusal(403, "no_contract", f"no contract covers serial {serial}")
        if len(self.issued) >= MAX_ISSUED:
            raise Refusal(429, "limit", "issued-key limit of the simulated portal reached")
        contract = active[-1]
        key = issue_key(self._secrets.portal_secret, serial, feature, contract.end)
        issued = IssuedKey(serial, feature, key, end_of_day(contract.end), contract.number)
        self.issued.append(issued)
        return issued

    def issue_once(self, idempotency_key: str, serial: str, feature: str) -> tuple[IssuedKey, bool]:
        """`issue` under an idempotency key: (key, replayed). The same key for the same serial
        and feature gets the same answer; for another serial or feature, `Refusal` 422."""
        known = self._answered.get(idempotency_key)
        if known is not None:
            if (known.serial, known.feature) != (serial.strip().upper(), feature):
                reason = f"idempotency key {idempotency_key!r} was used for another request"
                raise Refusal(422, "idempotency_key_reused", reason)
            return known, True
        issued = self.issue(serial, feature)
        if len(self._answered) >= MAX_ISSUED:
            self._answered.pop(next(iter(self._answered)))
        self._answered[idempotency_key] = issued
        return issued, False

    def issue_all_entitled(self) -> int:
        """Issue keys for every entitled serial and feature that has none yet; returns how many."""
        have = {(k.serial, k.feature) for k in self.issued}
        count = 0
        for serial, family in sorted(self._families.items()):
            for feature in FEATURES_BY_FAMILY.get(family, ()):
                if (serial, feature) in have:
                    continue
                try:
                    self.issue(serial, feature)
                except Refusal:
                    continue
                count += 1
        return count

    def to_json(self) -> list[dict[str, str]]:
        """Issued keys for the state file."""
        return [
            {
                "serial": k.serial,
                "feature": k.feature,
                "key": k.key,
                "expires_at": k.expires_at.isoformat(),
                "contract": k.contract,
            }
            for k in self.issued
        ]

    def load_json(self, data: Sequence[dict[str, str]]) -> None:
        """Restore issued keys from the state file."""
        self.issued = [
            IssuedKey(
                d["serial"],
                d["feature"],
                d["key"],
                datetime.fromisoformat(d["expires_at"]),
                d["contract"],
            )
            for d in data
        ]

    def check_token(self, header: str) -> bool:
        """Constant-time bearer token check."""
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(
            token.strip().encode(), self._secrets.portal_token.encode()
        )


PORTAL_KEY = web.AppKey("portal", Portal)


def _error(status: int, error: str, reason: str) -> web.Response:
    return web.json_response({"error": error, "reason": reason}, status=status)


@web.middleware
async def _bearer(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.app[PORTAL_KEY].check_token(request.headers.get("Authorization", "")):
        return _error(401, "unauthorized", "missing or invalid API token")
    response: web.StreamResponse = await handler(request)
    return response


async def post_key(request: web.Request) -> web.Response:
    """Issue one key (see module docstring)."""
    try:
        body: Any = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    serial = body.get("serial") if isinstance(body, dict) else None
    feature = body.get("feature") if isinstance(body, dict) else None
    if not isinstance(serial, str) or not isinstance(feature, str) or not serial or not feature:
        return _error(400, "bad_request", 'expected JSON {"serial": ..., "feature": ...}')
    idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
        return _error(400, "bad_request", f"{IDEMPOTENCY_HEADER} must be 1-255 characters")
    portal = request.app[PORTAL_KEY]
    replayed = False
    try:
        if idempotency_key is None:
            issued = portal.issue(serial, feature)
        else:
            issued, replayed = portal.issue_once(idempotency_key, serial, feature)
    except Refusal as refusal:
        return _error(refusal.status, refusal.error, refusal.reason)
    return web.json_response(
        {
            "serial": issued.serial,
            "feature": issued.feature,
            "key": issued.key,
            "expires_at": issued.expires_at.isoformat(),
            "contract": issued.contract,
        },
        status=200 if replayed else 201,
        headers={"Idempotent-Replayed": "true"} if replayed else None,
    )


async def keys_csv(request: web.Request) -> web.Response:
    """CSV export of issued keys for `polyfleet keys import`."""
    portal = request.app[PORTAL_KEY]
    if request.query.get("all_entitled") in ("1", "true", "yes"):
        portal.issue_all_entitled()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(KEYS_CSV_COLUMNS)
    for k in portal.issued:
        writer.writerow([k.serial, k.feature, k.key, k.expires_at.isoformat()])
    return web.Response(text=buffer.getvalue(), content_type="text/csv")


async def entitlements(request: web.Request) -> web.Response:
    """The contracts that cover one serial."""
    portal = request.app[PORTAL_KEY]
    serial = request.match_info["serial"].upper()
    return web.json_response(
        {
            "serial": serial,
            "contracts": [
                {
                    "number": c.number,
                    "kind": c.kind.value,
                    "start": c.start.isoformat(),
                    "end": c.end.isoformat(),
                }
                for c in portal.covering(serial)
            ],
        }
    )


def create_app(portal: Portal) -> web.Application:
    """The portal's HTTP application."""
    app = web.Application(middlewares=[_bearer])
    app[PORTAL_KEY] = portal
    app.router.add_post("/api/v1/keys", post_key)
    app.router.add_get("/api/v1/keys.csv", keys_csv)
    app.router.add_get("/api/v1/entitlements/{serial}", entitlements)
    return app
