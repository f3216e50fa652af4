"""`create_app`: the aiohttp application of `polyfleet serve`, built from the route modules.

A branch adds routes by writing a module with a module-level `routes = ApiRoutes()` and listing
it in ROUTE_MODULES; the OpenAPI document is built from the same list.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import version

from aiohttp import web

from controller.api.auth import Authenticator, FailedAuthThrottle
from controller.api.metrics import Metrics
from controller.api.openapi import openapi_document
from controller.api.problems import problem_middleware
from controller.api.routes.openapi_doc import DOCUMENT
from controller.api.routing import AUTHENTICATOR, LATENCY_HOOK, ApiRoutes
from controller.api.services import SERVICES, Services
from controller.dashboard import add_dashboard_routes
from controller.settings import PolyfleetSettings
from inventory.store import InventoryStore
from inventory.token_store import TokenStore

ROUTE_MODULES: tuple[str, ...] = (
    "controller.api.routes.ops",
    "controller.api.routes.me",
    "controller.api.routes.tokens",
    "controller.api.routes.devices",
    "controller.api.routes.fleet",
    "controller.api.routes.confirmations",
    "controller.api.routes.openapi_doc",
    "controller.api.routes.jobs",
    "controller.api.routes.agents",
    "controller.api.routes.events",
    "controller.api.routes.overview",
    "controller.api.routes.confirmation_export",
)
"""Every module of API routes, each with a module-level `routes` (an ApiRoutes) and, if it
needs one, a `setup(app)` called once the services are in place (start-up and clean-up hooks,
metrics gauges, `Services.agents_last_seen`)."""


def route_tables() -> list[ApiRoutes]:
    """The ApiRoutes of every module in ROUTE_MODULES, in order."""
    tables = []
    for name in ROUTE_MODULES:
        routes = import_module(name).routes
        assert isinstance(routes, ApiRoutes), f"{name}.routes is not an ApiRoutes"
        tables.append(routes)
    return tables


def _set_up_modules(app: web.Application) -> None:
    for name in ROUTE_MODULES:
        setup = getattr(import_module(name), "setup", None)
        if setup is not None:
            setup(app)


def create_app(
    store: InventoryStore,
    *,
    settings: PolyfleetSettings | None = None,
    throttle: FailedAuthThrottle | None = None,
    metrics: Metrics | None = None,
) -> web.Application:
    """The application over an opened (migrated) store; the caller closes the store."""
    app = web.Application(middlewares=[problem_middleware], client_max_size=1024 * 1024)
    tokens = TokenStore(store.engine)
    services = Services(
        store=store,
        tokens=tokens,
        settings=settings or PolyfleetSettings(),
        metrics=metrics or Metrics(),
    )
    app[SERVICES] = services
    app[AUTHENTICATOR] = Authenticator(tokens, throttle or FailedAuthThrottle())
    app[LATENCY_HOOK] = services.metrics.observe_request
    tables = route_tables()
    for table in tables:
        table.register(app)
    app[DOCUMENT] = openapi_document(tables, version=version("polyfleet"))
    _set_up_modules(app)
    add_dashboard_routes(app)
    return app
