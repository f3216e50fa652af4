"""VideoOS personality (Studio X30/X50/X70, G7500): session login and system REST routes.

Login, the `session_id` cookie plus XSRF token, 403 without a valid session and the `/rest/system`
fields follow poly-device-apis.md section 2.1. Option keys are modeled in `videoos_modeled`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from simulator import videoos_modeled
from simulator.faults import accepted_http_password
from simulator.https_face import current_device, make_app
from simulator.state import SimDevice

SESSIONS_KEY = web.AppKey("videoos_sessions", dict[str, "OrderedDict[str, Session]"])
MAX_SESSIONS_PER_DEVICE = 32
_LOGIN_PATHS = ("/rest/current/session", "/rest/session")
_UNSAFE = frozenset({"POST", "PUT", "DELETE", "PATCH"})


@dataclass(slots=True)
class Session:
    """A logged-in client of one device."""

    session_id: str
    xsrf_token: str
    user: str
    created_ms: int


def _api_model(model: str) -> str:
    """`/rest/system` spells models without spaces (`StudioX30`)."""
    return model.replace(" ", "")


def _sessions(request: web.Request, device: SimDevice) -> OrderedDict[str, Session]:
    return request.app[SESSIONS_KEY].setdefault(device.serial, OrderedDict())


def _forbidden(reason: str = "SESSION_INVALID") -> web.Response:
    return web.json_response({"success": False, "reason": reason}, status=403)


async def login(request: web.Request) -> web.Response:
    """`POST /rest/current/session` (or `/rest/session`) with `{"user", "password"}`."""
    device = current_device(request)
    try:
        body: Any = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    user = body.get("user") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    creds = device.credentials
    now_ms = int(time.time() * 1000)
    if not (
        isinstance(user, str)
        and isinstance(password, str)
        and secrets.compare_digest(user.encode(), creds.http_user.encode())
        and secrets.compare_digest(password.encode(), accepted_http_password(device).encode())
    ):
        return web.json_response(
            {
                "success": False,
                "reason": "INVALID_CREDENTIALS",
                "loginStatus": {"failedLogins": 1, "loginResult": "FAILED"},
            },
            status=401,
        )
    session = Session(secrets.token_urlsafe(24), secrets.token_urlsafe(24), user, now_ms)
    sessions = _sessions(request, device)
    sessions[session.session_id] = session
    while len(sessions) > MAX_SESSIONS_PER_DEVICE:
        sessions.popitem(last=False)
    peer = request.remote or ""
    response = web.json_response(
        {
            "success": True,
            "reason": "",
            "loginStatus": {
                "failedLogins": 0,
                "isPasswordAgeLimitReached": False,
                "lastLoginClient": peer,
                "lastLoginClientType": "WEB",
                "lastLoginTime": now_ms,
                "loginResult": "SUCCESS",
            },
            "session": {
                "sessionId": session.session_id,
                "userId": user,
                "role": "ADMIN",
                "clientType": "WEB",
                "isAuthenticated": True,
                "isConnected": True,
                "isNew": True,
                "isStale": False,
                "location": peer,
                "creationTime": now_ms,
            },
        }
    )
    response.set_cookie("session_id", session.session_id, path="/", secure=True, httponly=True)
    response.set_cookie("XSRF-TOKEN", session.xsrf_token, path="/", secure=True)
    return response


def session_of(request: web.Request) -> Session | None:
    """The valid session a request carries (and, for changes, its XSRF header), else None."""
    device = current_device(request)
    session = _sessions(request, device).get(request.cookies.get("session_id", ""))
    if session is None:
        return None
    if request.method in _UNSAFE:
        header = request.headers.get("x-xsrf-token", "")
        if not secrets.compare_digest(header.encode(), session.xsrf_token.encode()):
            return None
    return session


async def logout(request: web.Request) -> web.Response:
    """`DELETE /rest/current/session`: end the session (sessions left open lock devices up)."""
    device = current_device(request)
    _sessions(request, device).pop(request.cookies.get("session_id", ""), None)
    return web.Response(status=204)


async def system(request: web.Request) -> web.Response:
    """`GET /rest/system` with the fields of the AVI-SPL capture."""
    device = current_device(request)
    now = time.time()
    return web.json_response(
        {
            "build": str(366_000 + sum(map(ord, device.firmware)) % 1000),
            "buildType": "Release",
            "hardwareVersion": "1",
            "lanStatus": {"duplex": "FULL", "speedMbps": 1000, "state": "LAN_UP"},
            "model": _api_model(device.model),
            "rebootNeeded": device.restart_required,
            "serialNumber": device.serial,
            "softwareVersion": device.firmware,
            "state": "IN_CALL" if device.in_call else "ASLEEP",
            "systemName": device.system_name,
            "systemTime": int(now * 1000),
            "timeOffset": 0,
            "timeServerState": "TIMESERVER_UP",
            "uptime": round(max(0.0, now - device.boot_time), 2),
        }
    )


_STATUS_ITEMS: tuple[tuple[str, str], ...] = (
    ("SIP_SERVER_HEADING", "system.status.sipserver"),
    ("IP_NETWORK_HEADING", "system.status.ipnetwork"),
    ("TRACKABLE_CAMERA_HEADING", "system.status.trackablecamera"),
    ("GATEKEEPER_HEADING", "system.status.gatekeeper"),
    ("PROVISIONING_HEADING", "system.status.provisioning"),
    ("AUDIO_HEADING", "system.status.mr.audio"),
    ("REMOTE_CONTROL_HEADING", "system.status.remotecontrol"),
    ("GLOBAL_DIRECTORY_HEADING", "system.status.globaldirectory"),
    ("CALENDAR_HEADING", "system.status.calendar"),
)


async def system_status(_request: web.Request) -> web.Response:
    """`GET /rest/system/status`: a list of `{langtag, name, stateList}`."""
    return web.json_response(
        [{"langtag": tag, "name": name, "stateList": ["up"]} for tag, name in _STATUS_ITEMS]
    )


async def reboot(request: web.Request) -> web.Response:
    """`POST /rest/system/reboot` with `{"action": "reboot"}`; a reboot ends every session."""
    device = current_device(request)
    try:
        body: Any = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or body.get("action") != "reboot":
        return web.json_response({"success": False, "reason": "INVALID_ACTION"}, status=400)
    device.boot_time = time.time()
    device.restart_required = False
    _sessions(request, device).clear()
    return web.json_response({"success": True})


@web.middleware
async def _session_guard(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path in _LOGIN_PATHS and request.method == "POST":
        response: web.StreamResponse = await handler(request)
        return response
    if session_of(request) is None:
        return _forbidden()
    if current_device(request).faults.busy:
        return _forbidden("DEVICE_BUSY")
    response = await handler(request)
    return response


def _routes(app: web.Application) -> None:
    app.middlewares.append(_session_guard)
    for path in _LOGIN_PATHS:
        app.router.add_post(path, login)
    app.router.add_delete("/rest/current/session", logout)
    app.router.add_get("/rest/system", system)
    app.router.add_get("/rest/system/status", system_status)
    app.router.add_post("/rest/system/reboot", reboot)
    videoos_modeled.add_routes(app)


def create_app(portal_secret: bytes) -> web.Application:
    """The VideoOS application serving every video system registered in its device map."""
    app = make_app(_routes, portal_secret)
    app[SESSIONS_KEY] = {}
    return app
