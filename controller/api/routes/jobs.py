"""Job routes: ask for a scan, probe, re-activation or discovery (202 and a job id), then read
the job until it is done. The job's result is the CLI's `-o json` document of the same work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from controller.api.models import Page, PageQuery, Strict
from controller.api.problems import FieldError, Problem
from controller.api.routing import ApiRoutes, Call
from controller.api.services import SERVICES
from controller.discovery import DiscoveryError
from controller.usecases.jobs import (
    submit_discovery,
    submit_probe,
    submit_reactivation,
    submit_scan,
)
from inventory.job_store import Job, JobKind, JobNotFound, JobState, JobStore
from inventory.models import ProfileName
from inventory.token_store import Role

routes = ApiRoutes()


class JobProgress(BaseModel):
    done: int
    total: int


class JobOut(BaseModel):
    """A job as the API shows it; `result` is the CLI's `-o json` document once done."""

    id: str
    kind: JobKind
    site: str | None
    state: JobState
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    agent: str | None = Field(description="who holds or held the job's lease")
    progress: JobProgress
    result: Any = None
    error: str | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls.model_validate(job.to_json())


class JobPage(Page[JobOut]):
    pass


class JobAccepted(BaseModel):
    job: str


class JobQuery(PageQuery):
    state: JobState | None = None
    kind: JobKind | None = None


class ScanCreate(Strict):
    site: str | None = Field(default=None, min_length=1, max_length=128)
    devices: list[str] | None = Field(
        default=None, min_length=1, max_length=10_000, description="serials or MACs"
    )


class DeviceJobCreate(Strict):
    device: str = Field(min_length=1, max_length=64, description="serial or MAC, any spelling")


class ReactivationCreate(DeviceJobCreate):
    feature: str | None = Field(default=None, min_length=1, max_length=64)


class DiscoveryCreate(Strict):
    cidrs: list[str] = Field(min_length=1, max_length=64)
    site: str = Field(min_length=1, max_length=128)
    credentials: list[ProfileName] = Field(
        default_factory=list,
        max_length=16,
        description="credential profiles to probe with, in order (at a site agent: names in "
        "its credentials file); none: every profile",
    )


def _actor(call: Call) -> str:
    """Who asked, for the job and a re-activation's audit record: the token's name or id."""
    caller = call.caller
    return f"{caller.name or 'token ' + caller.token_id} (api)"


def _accepted(call: Call, job: Job) -> JobAccepted:
    """The answer to a queued job; long polls waiting in this process look at once."""
    call.request.app[SERVICES].queued.ring()
    return JobAccepted(job=job.id)


_ACCEPTED: dict[str, Any] = {
    "response": JobAccepted,
    "status": 202,
    "tags": ("jobs",),
    "responses": {404: "no such device"},
}


@routes.endpoint(
    "POST", "/scans", role=Role.TECHNICIAN, body=ScanCreate, summary="Queue a scan", **_ACCEPTED
)
async def create_scan(call: Call) -> JobAccepted:
    wanted = call.body_as(ScanCreate)
    job = await submit_scan(
        call.request.app[SERVICES].store,
        site=wanted.site,
        devices=wanted.devices,
        created_by=_actor(call),
    )
    return _accepted(call, job)


@routes.endpoint(
    "POST",
    "/probes",
    role=Role.TECHNICIAN,
    body=DeviceJobCreate,
    summary="Queue a probe of one device (every read-only call of its driver)",
    **_ACCEPTED,
)
async def create_probe(call: Call) -> JobAccepted:
    wanted = call.body_as(DeviceJobCreate)
    store = call.request.app[SERVICES].store
    job = await submit_probe(store, device=wanted.device, created_by=_actor(call))
    return _accepted(call, job)


@routes.endpoint(
    "POST",
    "/reactivations",
    role=Role.TECHNICIAN,
    body=ReactivationCreate,
    summary="Queue the re-activation of a device's expired (or named) feature",
    **_ACCEPTED,
)
async def create_reactivation(call: Call) -> JobAccepted:
    wanted = call.body_as(ReactivationCreate)
    job = await submit_reactivation(
        call.request.app[SERVICES].store,
        device=wanted.device,
        feature=wanted.feature,
        created_by=_actor(call),
    )
    return _accepted(call, job)


@routes.endpoint(
    "POST",
    "/discoveries",
    role=Role.ADMIN,
    body=DiscoveryCreate,
    response=JobAccepted,
    status=202,
    tags=("jobs",),
    summary="Queue a discovery of address ranges",
)
async def create_discovery(call: Call) -> JobAccepted:
    wanted = call.body_as(DiscoveryCreate)
    try:
        job = await submit_discovery(
            call.request.app[SERVICES].store,
            cidrs=wanted.cidrs,
            site=wanted.site,
            credentials=wanted.credentials,
            created_by=_actor(call),
        )
    except DiscoveryError as exc:
        raise Problem(
            400, str(exc), errors=[FieldError(field="body.cidrs", message=str(exc))]
        ) from None
    return _accepted(call, job)


@routes.endpoint(
    "GET",
    "/jobs/{id}",
    role=Role.VIEWER,
    response=JobOut,
    responses={404: "no job has that id"},
    tags=("jobs",),
    summary="A job: its state, progress and (once done) result",
)
async def get_job(call: Call) -> JobOut:
    try:
        job = await JobStore(call.request.app[SERVICES].store.engine).get(call.path["id"])
    except JobNotFound as exc:
        raise Problem(404, str(exc)) from None
    return JobOut.of(job)


@routes.endpoint(
    "GET",
    "/jobs",
    role=Role.VIEWER,
    query=JobQuery,
    response=JobPage,
    tags=("jobs",),
    summary="Jobs, newest first",
)
async def list_jobs(call: Call) -> JobPage:
    query = call.query_as(JobQuery)
    items, total = await JobStore(call.request.app[SERVICES].store.engine).list_jobs(
        state=query.state, kind=query.kind, limit=query.limit, offset=query.offset
    )
    return JobPage(
        items=[JobOut.of(j) for j in items], total=total, limit=query.limit, offset=query.offset
    )
