"""Site agents: admins create them (with their token), viewers list them, and an agent token
enrols, long-polls for its site's jobs, renews its lease, reports a re-activation's steps to
the controller's ledger as it runs them, and posts each result (stored once)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from controller.agent_jobs import agent_payload, store_agent_result
from controller.agent_ledger import LedgerAnswer, LedgerRequest, answer_ledger_call
from controller.api.models import Strict
from controller.api.problems import Problem
from controller.api.routing import ApiRoutes, Call
from controller.api.services import SERVICES, Services
from controller.entitlements import provider_from_settings
from controller.jobs import AGENT_KINDS, JobFailed, ReactivationSetup
from inventory.agent_store import Agent, AgentNotFound, AgentStore
from inventory.job_store import (
    DEFAULT_LEASE,
    ClaimScope,
    Job,
    JobKind,
    JobNotFound,
    JobState,
    JobStore,
    LeaseLost,
)
from inventory.token_store import Role

routes = ApiRoutes()

SEEN_EVERY = timedelta(seconds=10)
"""An agent's `last_seen_at` is written at most this often (a busy agent calls several times a
second; the controller's worker counts an agent as live for 90 s)."""
POLL_INTERVAL_S = 0.5
"""How often a waiting long poll looks at the queue again (at once when this process queues a
job: `Services.queued`)."""
MAX_WAIT_S = 60
JOB_LEASE: web.AppKey[timedelta] = web.AppKey("job_lease", timedelta)
"""How long an agent's claim holds without renewal (default DEFAULT_LEASE)."""


AGENT_KEPT_S = 10.0
"""How long this controller reuses an agent's row for its calls without reading it again."""


class KnownAgents:
    """Agents by token id as this controller last read or wrote them, for AGENT_KEPT_S.

    Every call of an agent needs its agent (its id and site, which never change; `last_seen_at`,
    which this controller writes itself): reading the row once per AGENT_KEPT_S instead of per
    call saves a statement on every claim and result. The token itself is still checked on
    every call, so a revoked token is refused at once."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, limit: int = 10_000) -> None:
        self._clock = clock
        self._limit = limit
        self._agents: dict[str, tuple[Agent, float]] = {}

    def get(self, token_id: str) -> Agent | None:
        kept = self._agents.get(token_id)
        if kept is None or self._clock() - kept[1] >= AGENT_KEPT_S:
            return None
        return kept[0]

    def keep(self, token_id: str, agent: Agent, *, read: bool) -> None:
        """Remember `agent` (as read now with `read`, else updated here: its age is kept)."""
        kept = self._agents.get(token_id)
        since = self._clock() if read or kept is None else kept[1]
        if len(self._agents) >= self._limit and token_id not in self._agents:
            self._agents.clear()  # bounded: a spray of tokens costs reads, not memory
        self._agents[token_id] = (agent, since)


KNOWN_AGENTS: web.AppKey[KnownAgents] = web.AppKey("known_agents", KnownAgents)


def setup(app: web.Application) -> None:
    app[KNOWN_AGENTS] = KnownAgents()


class AgentOut(BaseModel):
    id: str
    name: str
    site: str
    enrolled_at: datetime | None
    last_seen_at: datetime | None
    version: str | None

    @classmethod
    def of(cls, agent: Agent) -> AgentOut:
        return cls.model_validate(agent.to_json())


class AgentList(BaseModel):
    items: list[AgentOut]


class AgentCreate(Strict):
    name: str = Field(min_length=1, max_length=128)
    site: str = Field(min_length=1, max_length=128)


class AgentCreated(BaseModel):
    """The agent's id and its token, shown this once."""

    id: str
    token: str


class Enrol(Strict):
    name: str = Field(min_length=1, max_length=128)
    version: str | None = Field(default=None, max_length=64)


class Enrolled(BaseModel):
    agent_id: str
    site: str
    lease_seconds: int
    poll_wait: int
    controller_version: str


class PollQuery(Strict):
    wait: int = Field(default=30, ge=0, le=MAX_WAIT_S, description="seconds to wait for a job")


class ClaimedJob(BaseModel):
    id: str
    kind: str
    payload: dict[str, Any]
    lease_id: str
    lease_expires_at: datetime


class Progress(BaseModel):
    done: int = Field(ge=0)
    total: int = Field(ge=0)


class LeaseRenewal(Strict):
    lease_id: str = Field(min_length=1, max_length=64)
    progress: Progress | None = None


class LeaseRenewed(BaseModel):
    lease_expires_at: datetime


class ResultPost(Strict):
    lease_id: str = Field(min_length=1, max_length=64)
    state: Literal["done", "failed"]
    result: Any = None
    error: str | None = Field(default=None, max_length=10_000)


class ResultStored(BaseModel):
    stored: bool = Field(description="false: a result of this job was already stored")


@routes.endpoint(
    "GET", "/agents", role=Role.VIEWER, response=AgentList, tags=("agents",), summary="Agents"
)
async def list_agents(call: Call) -> AgentList:
    agents = await AgentStore(call.request.app[SERVICES].store.engine).list_agents()
    return AgentList(items=[AgentOut.of(a) for a in agents])


@routes.endpoint(
    "POST",
    "/agents",
    role=Role.ADMIN,
    body=AgentCreate,
    response=AgentCreated,
    status=201,
    tags=("agents",),
    summary="Create an agent of a site and its token (shown once)",
)
async def create_agent(call: Call) -> AgentCreated:
    wanted = call.body_as(AgentCreate)
    services = call.request.app[SERVICES]
    token, secret = await services.tokens.create(Role.AGENT, site=wanted.site, name=wanted.name)
    agent = await AgentStore(services.store.engine).create(
        wanted.name, wanted.site, token_id=token.id
    )
    return AgentCreated(id=agent.id, token=secret)


async def _calling_agent(call: Call) -> Agent:
    """The agent of the calling token; a token made with `tokens create --role agent` gets its
    agent on first use."""
    caller = call.caller
    assert caller.site is not None, "an agent token is bound to a site"
    known = call.request.app[KNOWN_AGENTS]
    registry = AgentStore(call.request.app[SERVICES].store.engine)
    agent = known.get(caller.token_id)
    if agent is None:
        try:
            agent = await registry.by_token(caller.token_id)
        except AgentNotFound:
            agent = await registry.create(
                caller.name or f"agent-{caller.token_id}", caller.site, token_id=caller.token_id
            )
        known.keep(caller.token_id, agent, read=True)
    now = datetime.now(UTC)
    if agent.last_seen_at is None or now - agent.last_seen_at >= SEEN_EVERY:
        await registry.seen(agent.id, now=now)
        agent = replace(agent, last_seen_at=now)
        known.keep(caller.token_id, agent, read=False)
    return agent


def _jobs(call: Call) -> JobStore:
    app = call.request.app
    return JobStore(app[SERVICES].store.engine, lease=app.get(JOB_LEASE, DEFAULT_LEASE))


@routes.endpoint(
    "POST",
    "/agent/enrol",
    role=Role.AGENT,
    body=Enrol,
    response=Enrolled,
    tags=("agent",),
    summary="An agent calls in (at start and after each restart)",
)
async def enrol(call: Call) -> Enrolled:
    wanted = call.body_as(Enrol)
    agent = await _calling_agent(call)
    registry = AgentStore(call.request.app[SERVICES].store.engine)
    agent = await registry.enrol(agent.id, name=wanted.name, version=wanted.version)
    call.request.app[KNOWN_AGENTS].keep(call.caller.token_id, agent, read=True)
    return Enrolled(
        agent_id=agent.id,
        site=agent.site,
        lease_seconds=int(_jobs(call).lease.total_seconds()),
        poll_wait=30,
        controller_version=version("polyfleet"),
    )


@routes.endpoint(
    "GET",
    "/agent/jobs",
    role=Role.AGENT,
    query=PollQuery,
    response=ClaimedJob,
    responses={204: "no job within the wait"},
    tags=("agent",),
    summary="Long poll: the next job of the agent's site, leased to it",
)
async def next_job(call: Call) -> ClaimedJob | None:
    agent = await _calling_agent(call)
    jobs = _jobs(call)
    scope = ClaimScope(site=agent.site, kinds=AGENT_KINDS)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + call.query_as(PollQuery).wait
    bell = call.request.app[SERVICES].queued
    while True:
        ring = bell.next_ring()
        job = await jobs.claim(scope, agent.id)
        if job is not None:
            assert job.lease_id is not None
            assert job.lease_expires_at is not None
            try:
                payload = await agent_payload(call.request.app[SERVICES].store, job)
            except JobFailed as exc:  # as the controller's own run would end it
                await jobs.complete(job.id, state=JobState.FAILED, error=str(exc))
                continue
            return ClaimedJob(
                id=job.id,
                kind=job.kind.value,
                payload=payload,
                lease_id=job.lease_id,
                lease_expires_at=job.lease_expires_at,
            )
        if loop.time() >= deadline:
            return None
        await bell.wait(ring, min(POLL_INTERVAL_S, max(0.0, deadline - loop.time())))


async def _agent_job(call: Call) -> tuple[Agent, Job]:
    agent = await _calling_agent(call)
    try:
        job = await _jobs(call).get(call.path["id"])
    except JobNotFound as exc:
        raise Problem(404, str(exc)) from None
    call.caller.require_site(job.site)
    return agent, job


@routes.endpoint(
    "POST",
    "/agent/jobs/{id}/lease",
    role=Role.AGENT,
    body=LeaseRenewal,
    response=LeaseRenewed,
    responses={404: "no job has that id", 409: "the lease is lost: stop the job"},
    tags=("agent",),
    summary="Renew the lease on a job (and report its progress)",
)
async def renew_lease(call: Call) -> LeaseRenewed:
    _agent, job = await _agent_job(call)
    renewal = call.body_as(LeaseRenewal)
    jobs = _jobs(call)
    try:
        until = await jobs.renew(job.id, renewal.lease_id)
    except LeaseLost as exc:
        raise Problem(409, str(exc)) from None
    if renewal.progress is not None:
        await jobs.report_progress(
            job.id, renewal.lease_id, renewal.progress.done, renewal.progress.total
        )
    return LeaseRenewed(lease_expires_at=until)


@routes.endpoint(
    "POST",
    "/agent/jobs/{id}/result",
    role=Role.AGENT,
    body=ResultPost,
    response=ResultStored,
    responses={404: "no job has that id"},
    tags=("agent",),
    summary="Post a job's result; a second delivery stores nothing (idempotent by job id)",
)
async def post_result(call: Call) -> ResultStored:
    _agent, job = await _agent_job(call)
    posted = call.body_as(ResultPost)
    store = call.request.app[SERVICES].store
    stored = await store_agent_result(
        store,
        _jobs(call),
        job,
        lease_id=posted.lease_id,
        state=JobState(posted.state),
        result=posted.result,
        error=posted.error,
    )
    return ResultStored(stored=stored)


def _reactivation_setup(services: Services) -> ReactivationSetup:
    """The policy and licensing portal of the controller's settings (as its job worker's)."""
    return ReactivationSetup(
        policy=services.policy(), provider=provider_from_settings(services.settings.portal)
    )


@routes.endpoint(
    "POST",
    "/agent/jobs/{id}/ledger",
    role=Role.AGENT,
    body=LedgerRequest,
    response=LedgerAnswer,
    responses={
        400: "not a re-activation job",
        404: "no job has that id",
        409: "the lease is lost: stop the job",
    },
    tags=("agent",),
    summary="A step of a re-activation job the agent runs, recorded by the controller",
)
async def ledger_call(call: Call) -> LedgerAnswer:
    _agent, job = await _agent_job(call)
    request = call.body_as(LedgerRequest)
    if job.kind is not JobKind.REACTIVATION:
        raise Problem(400, f"job {job.id} is a {job.kind.value} job, not a re-activation")
    try:
        await _jobs(call).renew(job.id, request.lease_id)
    except LeaseLost as exc:
        raise Problem(409, str(exc)) from None
    services = call.request.app[SERVICES]
    return await answer_ledger_call(
        services.store, job, request, lambda: _reactivation_setup(services)
    )
