"""The agent's trust in its controllers' TLS certificates, by the rules devices follow.

With `--ca-bundle` the certificate is verified against that CA. Without it the certificate is
pinned on first use (`sha256:<hex>` of the DER, as device pins are) in a small JSON file next to
the spool, and enforced from then on: a controller that shows another certificate is refused
until its pin is removed from the file on purpose.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from device_drivers.transports.trust import parse_sha256_pin, sha256_pin

SslCheck = ssl.SSLContext | aiohttp.Fingerprint | bool


class ControllerTrust:
    """What aiohttp checks for each controller URL (`ssl=` of a request)."""

    def __init__(self, *, ca_bundle: str | None, pin_file: Path) -> None:
        self.pin_file = pin_file
        self._context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
        self._fingerprints: dict[str, aiohttp.Fingerprint] = {}

    def _pins(self) -> dict[str, str]:
        try:
            loaded = json.loads(self.pin_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}

    def pin_of(self, url: str) -> str | None:
        return self._pins().get(_endpoint(url))

    async def ssl_for(self, url: str) -> SslCheck:
        parts = urlsplit(url)
        if parts.scheme != "https":
            return True
        if self._context is not None:
            return self._context
        endpoint = _endpoint(url)
        found = self._fingerprints.get(endpoint)
        if found is not None:
            return found
        pin = self.pin_of(url) or await self._pin_first_use(url)
        digest = parse_sha256_pin(pin)
        if digest is None:
            raise ValueError(f"{self.pin_file}: the pin of {endpoint} is not sha256:<64 hex>")
        found = self._fingerprints[endpoint] = aiohttp.Fingerprint(digest)
        return found

    async def _pin_first_use(self, url: str) -> str:
        """Read the controller's certificate once, unverified, and remember its pin."""
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=unverified, server_hostname=host), 10
        )
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
        pin = sha256_pin(der)
        pins = self._pins()
        pins[_endpoint(url)] = pin
        self.pin_file.parent.mkdir(parents=True, exist_ok=True)
        self.pin_file.write_text(json.dumps(pins, indent=2, sort_keys=True), encoding="utf-8")
        return pin


def _endpoint(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
