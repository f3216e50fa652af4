"""The agent's HTTP client of the controller API: enrol, long-poll, renew, report a
re-activation's steps, post results.

It talks to one controller URL at a time and moves to the next one when the current one cannot
be reached (connection refused, timeout, 5xx), so an agent told every controller keeps working
when one of them is down. The token travels only in the Authorization header.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp

from agent.trust import ControllerTrust

API = "/api/v1"


class ControllerUnreachable(Exception):
    """No answer from the controller (or an error on its side): try again, maybe elsewhere."""


class AgentRefused(Exception):
    """The controller refuses this agent (token unknown, revoked, or of another role): retrying
    cannot help."""


class ResultRejected(Exception):
    """The controller refuses a result or a call as malformed (HTTP 400): sending it again
    cannot help."""


class LeaseGone(Exception):
    """The job's lease is no longer this agent's (it expired and the job went back)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Jittered exponential back-off ("full jitter"): a random wait up to base * 2^attempt,
    capped, so many agents coming back together do not hit the controller in step."""

    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2 ** min(attempt, 20)))


class ControllerClient:
    """One aiohttp session; `rotate()` moves to the next controller URL."""

    def __init__(
        self,
        urls: Sequence[str],
        token: str,
        *,
        trust: ControllerTrust,
        request_timeout: float = 30.0,
    ) -> None:
        if not urls:
            raise ValueError("at least one controller URL is needed")
        self.urls = [u.rstrip("/") for u in urls]
        self._index = 0
        self._auth = {"Authorization": f"Bearer {token}"}
        self.trust = trust
        self.request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return self.urls[self._index]

    def rotate(self) -> None:
        self._index = (self._index + 1) % len(self.urls)

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(trust_env=False)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        seconds: float | None = None,
    ) -> tuple[int, Any]:
        assert self._session is not None, "use the client as an async context manager"
        url = self.url
        try:
            check = await self.trust.ssl_for(url)
            async with self._session.request(
                method,
                url + API + path,
                json=body,
                params=params,
                headers=self._auth,
                ssl=check,
                timeout=aiohttp.ClientTimeout(total=seconds or self.request_timeout),
            ) as response:
                status = response.status
                text = await response.text()
        except aiohttp.ServerFingerprintMismatch as exc:
            raise ControllerUnreachable(
                f"{url}: its TLS certificate is not the one pinned in {self.trust.pin_file}"
                f" (got sha256:{exc.got.hex()})"
            ) from None
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise ControllerUnreachable(f"{url}: {type(exc).__name__}: {exc}") from None
        if status >= 500 or status in (408, 429):
            raise ControllerUnreachable(f"{url}: HTTP {status}")
        if status in (401, 403):
            raise AgentRefused(f"{url} refuses this agent: HTTP {status}: {_detail(text)}")
        try:
            data = json.loads(text) if text else None
        except ValueError:
            raise ControllerUnreachable(f"{url}: an answer that is not JSON") from None
        return status, data

    async def enrol(self, name: str, version: str) -> dict[str, Any]:
        status, data = await self._call(
            "POST", "/agent/enrol", body={"name": name, "version": version}
        )
        _expect(status, 200, data)
        return dict(data)

    async def next_job(self, wait: int) -> dict[str, Any] | None:
        status, data = await self._call(
            "GET", "/agent/jobs", params={"wait": str(wait)}, seconds=wait + self.request_timeout
        )
        if status == 204:
            return None
        _expect(status, 200, data)
        return dict(data)

    async def renew(
        self, job_id: str, lease_id: str, progress: tuple[int, int] | None = None
    ) -> None:
        body: dict[str, Any] = {"lease_id": lease_id}
        if progress is not None:
            body["progress"] = {"done": progress[0], "total": progress[1]}
        status, data = await self._call("POST", f"/agent/jobs/{job_id}/lease", body=body)
        if status in (404, 409):
            raise LeaseGone(_detail(data))
        _expect(status, 200, data)

    async def ledger(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """One call of a re-activation job to the controller's ledger, under the job's lease."""
        status, data = await self._call("POST", f"/agent/jobs/{job_id}/ledger", body=body)
        if status in (404, 409):
            raise LeaseGone(_detail(data))
        if status in (400, 413, 422):
            raise ResultRejected(f"HTTP {status}: {_detail(data)}")
        _expect(status, 200, data)
        return dict(data)

    async def post_result(self, job_id: str, body: dict[str, Any]) -> bool:
        """True when the controller stored it now, False when it already had it."""
        status, data = await self._call("POST", f"/agent/jobs/{job_id}/result", body=body)
        if status == 404:  # the job is gone from the controller: nothing will ever store it
            return False
        if status in (400, 413, 422):
            raise ResultRejected(f"HTTP {status}: {_detail(data)}")
        _expect(status, 200, data)
        return bool(data.get("stored"))


def _detail(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("detail") or data.get("title") or data)
    return str(data)[:200]


def _expect(status: int, wanted: int, data: Any) -> None:
    if status != wanted or (wanted == 200 and not isinstance(data, dict)):
        raise ControllerUnreachable(f"unexpected answer HTTP {status}: {_detail(data)}")
