"""Fleet-wide reads: `GET /health` (as `health --format json`), `GET /sites`, `GET /quotes/{id}`."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

from aiohttp import web

from controller.api.models import HealthQuery, HealthReport, QuoteQuery, SiteList, SiteOut
from controller.api.routing import ApiRoutes, Call
from controller.api.services import SERVICES
from controller.eligibility import Quote
from controller.health import STATUS_ORDER, Health
from controller.health_render import render_json
from controller.usecases.health import check_fleet
from controller.usecases.quote import QuoteRequest, quote
from inventory.token_store import Role

routes = ApiRoutes()


@routes.endpoint(
    "GET", "/health", role=Role.VIEWER, query=HealthQuery, response=HealthReport,
    tags=("fleet",), summary="The fleet's (or a site's) health, as `health --format json`",
)  # fmt: skip
async def get_health(call: Call) -> web.Response:
    query = call.query_as(HealthQuery)
    services = call.request.app[SERVICES]
    fleet = await check_fleet(
        services.store.engine, query.site, datetime.now(UTC), services.health_policy()
    )
    # the CLI's renderer itself, so the two can never differ
    return web.Response(text=render_json(fleet), content_type="application/json")


@routes.endpoint(
    "GET", "/sites", role=Role.VIEWER, response=SiteList, tags=("fleet",),
    summary="Each site's device count, health counts and when its agent was last seen",
)  # fmt: skip
async def get_sites(call: Call) -> SiteList:
    services = call.request.app[SERVICES]
    fleet = await check_fleet(
        services.store.engine, None, datetime.now(UTC), services.health_policy()
    )
    counts: dict[str | None, Counter[Health]] = {}
    for verdict in fleet.devices:
        counts.setdefault(verdict.site, Counter())[verdict.status] += 1
    seen = await services.agents_last_seen() if services.agents_last_seen else {}
    names = sorted(counts, key=lambda site: (site is None, site or ""))
    return SiteList(
        [
            SiteOut(
                site=site,
                devices=sum(counts[site].values()),
                counts={status: counts[site][status] for status in STATUS_ORDER},
                agent_last_seen=seen.get(site) if site is not None else None,
            )
            for site in names
        ]
    )


@routes.endpoint(
    "GET", "/quotes/{id}", role=Role.TECHNICIAN, query=QuoteQuery, response=Quote,
    tags=("reactivation",), responses={404: "no device has that serial or MAC"},
    summary="May this device be re-activated, at what fee, under what contract (`quote -o json`)",
)  # fmt: skip
async def get_quote(call: Call) -> Quote:
    query = call.query_as(QuoteQuery)
    services = call.request.app[SERVICES]
    request = QuoteRequest(
        device_id=call.path["id"], feature=query.feature, on=query.on or date.today()
    )
    return await quote(services.store, request, services.policy())
