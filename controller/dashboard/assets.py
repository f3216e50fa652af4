"""Serve the dashboard's files from the package with headers that keep the page self-contained.

Every file under `static/` is loaded at start-up into a fixed table: a request can only name one
of them (no path is ever joined onto the file system), and the Content-Security-Policy allows
scripts, styles and connections to this origin only, so the page cannot load or send anything
elsewhere even if a stored value tried to.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from aiohttp import web

STATIC_PREFIX = "/static/"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The assets change with the installed version; revalidating is cheap on loopback or a LAN.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str


def load_assets(root: Traversable | None = None) -> dict[str, Asset]:
    """Every shipped file by its URL path (`/static/js/main.js`), plus `/` for the page."""
    base = root if root is not None else files("controller.dashboard") / "static"
    table: dict[str, Asset] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif not entry.name.startswith("."):
                suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
                kind = _TYPES.get(suffix) or mimetypes.guess_type(entry.name)[0]
                table[prefix + entry.name] = Asset(
                    entry.read_bytes(), kind or "application/octet-stream"
                )

    walk(base, STATIC_PREFIX)
    table["/"] = table[f"{STATIC_PREFIX}index.html"]
    return table


def add_dashboard_routes(app: web.Application) -> None:
    """Mount the dashboard: `/` is the page, `/static/...` its scripts and styles."""
    assets = load_assets()

    async def serve(request: web.Request) -> web.Response:
        asset = assets.get(request.path)
        if asset is None:
            raise web.HTTPNotFound()
        charset = "utf-8" if asset.content_type.startswith("text/") else None
        return web.Response(
            body=asset.body, content_type=asset.content_type, charset=charset, headers=_HEADERS
        )

    app.router.add_get("/", serve)
    app.router.add_get(STATIC_PREFIX + "{path:.+}", serve)
