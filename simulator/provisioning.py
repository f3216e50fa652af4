"""Simulated provisioning server: stores and serves `<MAC>-license.cfg` files per site.

Phones fetch their license file from here on `updateConfiguration` (poly-device-apis.md 1.6), so a
driver applies a phone license by `PUT http://<server>/<site>/<mac>-license.cfg` and then triggers
the phone. `GET` of the same URL returns the file; names are matched case-insensitively.
"""

from __future__ import annotations

import re

from aiohttp import web

FILES_KEY = web.AppKey("provisioning_files", dict[tuple[str, str], bytes])
MAX_FILE_BYTES = 64 * 1024
MAX_FILES = 100_000
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NAME = re.compile(r"^[0-9a-f]{12}-license\.cfg$")


def _key(request: web.Request) -> tuple[str, str]:
    site = request.match_info["site"]
    name = request.match_info["name"].lower()
    if not _SITE.match(site) or not _NAME.match(name):
        raise web.HTTPNotFound(text="only <site>/<mac>-license.cfg files live here\n")
    return site, name


async def get_file(request: web.Request) -> web.Response:
    """Serve a stored license file (404 when none was stored)."""
    content = request.app[FILES_KEY].get(_key(request))
    if content is None:
        raise web.HTTPNotFound()
    return web.Response(body=content, content_type="application/xml")


async def put_file(request: web.Request) -> web.Response:
    """Store (or replace) a license file."""
    key = _key(request)
    files = request.app[FILES_KEY]
    if request.content_length is not None and request.content_length > MAX_FILE_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_FILE_BYTES, request.content_length)
    body = await request.content.read(MAX_FILE_BYTES + 1)
    if len(body) > MAX_FILE_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_FILE_BYTES, len(body))
    if key not in files and len(files) >= MAX_FILES:
        raise web.HTTPInsufficientStorage()
    created = key not in files
    files[key] = body
    return web.Response(status=201 if created else 204)


async def delete_file(request: web.Request) -> web.Response:
    """Remove a license file."""
    request.app[FILES_KEY].pop(_key(request), None)
    return web.Response(status=204)


def create_app(files: dict[tuple[str, str], bytes] | None = None) -> web.Application:
    """The provisioning server's application; `files` lets the runner restore saved files."""
    app = web.Application(client_max_size=MAX_FILE_BYTES)
    app[FILES_KEY] = {} if files is None else files
    app.router.add_get("/{site}/{name}", get_file)
    app.router.add_put("/{site}/{name}", put_file)
    app.router.add_delete("/{site}/{name}", delete_file)
    return app


def site_url(base_url: str, site: str) -> str:
    """The provisioning URL a phone at `site` is configured with."""
    return f"{base_url.rstrip('/')}/{site}"
