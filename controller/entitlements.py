"""Where activation keys come from: imported keys first, else an entitlement provider.

`EntitlementProvider` is the interface a licensing portal implements; `PortalProvider` talks to
the simulated Poly licensing portal (`simulator/portal.py`). A key obtained from a provider is
stored in `activation_keys` (source "portal") before anyone uses it, so a crash between obtaining
and applying a key never loses one: the rerun finds it as an unused (or its own) key. A crash
between the portal's answer and storing the key is covered by the request's idempotency key (the
operation id): the rerun asks again with the same id and gets the same key, not a second one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
from pydantic import SecretStr
from yarl import URL

from controller.errors import ControllerError
from controller.settings import PortalSettings
from inventory.identifiers import normalize_serial
from inventory.key_files import key_ref, parse_expiry
from inventory.key_store import DuplicateKey, KeyInUse, KeyStore, NewKey

log = logging.getLogger("polyfleet.entitlements")

PORTAL_SOURCE = "portal"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TIMEOUT_S = 10.0


class EntitlementError(ControllerError):
    """Root of the errors of obtaining an activation key."""


class EntitlementRefused(EntitlementError):
    """The provider answered, and will not issue a key (no contract, unknown serial, ...)."""

    def __init__(self, reason: str, *, code: str | None = None, status: int | None = None) -> None:
        self.reason = reason
        self.code = code
        self.status = status
        super().__init__(f"the licensing portal refused a key: {reason}")


class EntitlementUnavailable(EntitlementError):
    """No answer to act on: network error, timeout, bad token, server error, nonsense reply,
    or no provider configured at all. Retrying later may help; the device is not ineligible."""


@dataclass(frozen=True, slots=True)
class ObtainedKey:
    """A key a provider issued; `key` is a SecretStr so it cannot leak into logs by accident."""

    serial: str
    feature: str
    key: SecretStr
    expires_at: datetime | None
    contract: str | None = None


class EntitlementProvider(Protocol):
    """Something that issues an activation key for a serial and a feature."""

    name: str

    async def obtain_key(
        self, serial: str, feature: str, *, idempotency_key: str | None = None
    ) -> ObtainedKey:
        """Issue a key, or raise EntitlementRefused / EntitlementUnavailable; a repeated
        request with the same `idempotency_key` gets the same key."""
        ...


class PortalProvider:
    """The simulated licensing portal: `POST {url}/api/v1/keys` with a bearer token and, per
    operation, an `Idempotency-Key` header (the IETF httpapi draft's name, as Stripe uses it)."""

    name = PORTAL_SOURCE

    def __init__(
        self,
        url: str,
        token: SecretStr | str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"portal url {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session

    def __repr__(self) -> str:
        return f"PortalProvider(url={self.url!r}, token=SecretStr('**********'))"

    async def obtain_key(
        self, serial: str, feature: str, *, idempotency_key: str | None = None
    ) -> ObtainedKey:
        """Ask the portal for a key; a refusal carries the portal's reason."""
        endpoint = URL(self.url).joinpath("api", "v1", "keys")  # a path below the portal's
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        body = {"serial": serial, "feature": feature}
        try:
            if self._session is not None:
                status, payload = await self._post(self._session, endpoint, body, headers)
            else:
                async with aiohttp.ClientSession(timeout=self._timeout) as session:
                    status, payload = await self._post(session, endpoint, body, headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail = str(exc) or exc.__class__.__name__
            raise EntitlementUnavailable(
                f"licensing portal {self.url} unreachable: {detail}"
            ) from None
        return self._interpret(status, payload, serial, feature)

    async def _post(
        self,
        session: aiohttp.ClientSession,
        endpoint: URL,
        body: dict[str, str],
        headers: dict[str, str],
    ) -> tuple[int, Any]:
        async with session.post(
            endpoint, json=body, headers=headers, timeout=self._timeout
        ) as response:
            text = await response.text()
            try:
                payload: Any = json.loads(text) if text else None
            except json.JSONDecodeError:
                payload = None
            return response.status, payload

    def _interpret(self, status: int, payload: Any, serial: str, feature: str) -> ObtainedKey:
        reason = payload.get("reason") if isinstance(payload, dict) else None
        code = payload.get("error") if isinstance(payload, dict) else None
        if status == 401:
            raise EntitlementUnavailable(
                f"licensing portal {self.url} rejected the API token (401): check [portal] token"
            )
        if status in (400, 403, 404, 422):
            raise EntitlementRefused(
                str(reason or f"HTTP {status}"),
                code=str(code) if code else None,
                status=status,
            )
        if status != 201 and status != 200:
            raise EntitlementUnavailable(
                f"licensing portal {self.url} answered HTTP {status}"
                + (f": {reason}" if reason else "")
            )
        if not isinstance(payload, dict) or not isinstance(payload.get("key"), str):
            raise EntitlementUnavailable(f"licensing portal {self.url} sent no key in its answer")
        if normalize_serial(str(payload.get("serial", ""))) != normalize_serial(serial) or (
            str(payload.get("feature", "")) != feature
        ):
            raise EntitlementUnavailable(
                f"licensing portal {self.url} issued a key for another serial or feature"
            )
        expires_text = payload.get("expires_at")
        try:
            expires_at = parse_expiry(expires_text) if isinstance(expires_text, str) else None
        except ValueError as exc:
            raise EntitlementUnavailable(f"licensing portal {self.url}: {exc}") from None
        contract = payload.get("contract")
        return ObtainedKey(
            serial=normalize_serial(serial),
            feature=feature,
            key=SecretStr(payload["key"]),
            expires_at=expires_at,
            contract=str(contract) if contract else None,
        )


def provider_from_settings(portal: PortalSettings) -> PortalProvider | None:
    """The configured portal ([portal] url + token in the config), or None when not configured."""
    if not portal.url:
        return None
    if portal.token is None:
        raise EntitlementUnavailable("[portal] url is set but [portal] token is missing")
    return PortalProvider(portal.url, portal.token)


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    """The key to apply: its store id and reference, the secret, and where it came from
    ("stored": imported or obtained earlier; else the provider's name, e.g. "portal")."""

    key_id: int
    key_ref: str
    key: SecretStr
    expires_at: datetime | None
    source: str
    contract: str | None = None


async def resolve_key(
    keys: KeyStore,
    provider: EntitlementProvider | None,
    serial: str,
    feature: str,
    *,
    operation_id: str | None = None,
    now: datetime | None = None,
) -> ResolvedKey:
    """An imported unused key first, else one from the provider (stored before it is returned).

    With `operation_id`, the key is also claimed for that operation (`mark_used`), and a key the
    operation claimed before (a resumed operation) is returned again rather than a new one.
    """
    serial = normalize_serial(serial)
    if operation_id is not None:
        mine = await keys.used_by_operation(operation_id, serial, feature)
        if mine is not None:
            return ResolvedKey(
                mine.key_id, mine.key_ref, mine.key_secret, mine.expires_at, "stored"
            )
    for _attempt in range(3):  # another operation may claim the same key between pick and mark
        unused = await keys.next_unused(serial, feature, now=now)
        if unused is None:
            break
        if operation_id is not None:
            try:
                await keys.mark_used(unused.key_id, operation_id, now=now)
            except KeyInUse:
                continue
        return ResolvedKey(
            unused.key_id, unused.key_ref, unused.key_secret, unused.expires_at, "stored"
        )
    if provider is None:
        raise EntitlementUnavailable(
            f"no unused activation key for {serial} {feature}: import one with "
            "`polyfleet keys import` or configure the licensing portal ([portal] url and token)"
        )
    obtained = await provider.obtain_key(serial, feature, idempotency_key=operation_id)
    return await _store_obtained(keys, provider, obtained, operation_id, now)


async def _store_obtained(
    keys: KeyStore,
    provider: EntitlementProvider,
    obtained: ObtainedKey,
    operation_id: str | None,
    now: datetime | None,
) -> ResolvedKey:
    ref = key_ref(obtained.key.get_secret_value())
    if obtained.expires_at is not None and obtained.expires_at <= (now or datetime.now(UTC)):
        raise EntitlementRefused(
            f"the key issued for {obtained.serial} {obtained.feature} expired on "
            f"{obtained.expires_at.isoformat()}"
        )
    new = NewKey(
        obtained.serial, obtained.feature, obtained.key, obtained.expires_at, provider.name
    )
    try:
        info = await keys.add(new, now=now)
    except DuplicateKey:
        # Portals re-issue the same key for the same serial, feature and term.
        existing = await keys.find(obtained.serial, obtained.feature, ref)
        if existing is None:  # pragma: no cover - the unique constraint said it exists
            raise
        info = existing
        if info.used_by is not None and info.used_by != operation_id:
            raise EntitlementRefused(
                f"the portal re-issued key {ref} for {obtained.serial} {obtained.feature}, "
                f"which operation {info.used_by} has already used"
            ) from None
    log.info("stored key %s for %s %s from %s", ref, obtained.serial, obtained.feature, new.source)
    if operation_id is not None:
        await keys.mark_used(info.key_id, operation_id, now=now)
    return ResolvedKey(
        info.key_id, ref, obtained.key, obtained.expires_at, provider.name, obtained.contract
    )
