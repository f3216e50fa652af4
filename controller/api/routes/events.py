"""`GET /events`: job changes as Server-Sent Events, for the dashboard's live progress.

The stream polls the store rather than listening inside this process, so it shows every job
change whichever controller or agent made it: `event: job` with the job's JSON (without its
result) whenever a job's state or progress changes, and a comment line now and then to keep
proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from aiohttp import web

from controller.api.routing import ApiRoutes, Call
from controller.api.services import SERVICES
from inventory.job_store import JobStore
from inventory.token_store import Role

routes = ApiRoutes()

POLL_S = 1.0
KEEPALIVE_S = 15.0
STREAM_S = 25.0
"""A stream ends after this long and the browser's EventSource reconnects (`retry:`), so no
connection (or a client that never reads to the end) is held forever."""
RECENT = timedelta(minutes=5)
"""Jobs finished this long before a client connects are still shown to it once."""


@routes.endpoint(
    "GET",
    "/events",
    role=Role.VIEWER,
    content_type="text/event-stream",
    tags=("jobs",),
    summary="Job state and progress changes (Server-Sent Events)",
)
async def events(call: Call) -> web.StreamResponse:
    request = call.request
    jobs = JobStore(request.app[SERVICES].store.engine)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(b"retry: 1000\n\n")
    seen: dict[str, tuple[str, object]] = {}
    since = datetime.now(UTC) - RECENT
    loop = asyncio.get_running_loop()
    quiet_since = ends = loop.time()
    ends += STREAM_S
    try:
        while loop.time() < ends:
            polled_at = datetime.now(UTC)
            for job in await jobs.active_or_finished_since(since):
                doc = job.to_json(with_result=False)
                mark = (doc["state"], doc["progress"])
                if seen.get(job.id) == mark:
                    continue
                seen[job.id] = mark
                await response.write(f"event: job\ndata: {json.dumps(doc)}\n\n".encode())
                quiet_since = loop.time()
            if loop.time() - quiet_since >= KEEPALIVE_S:
                await response.write(b": keep-alive\n\n")
                quiet_since = loop.time()
            since = polled_at - timedelta(seconds=POLL_S)
            _forget_finished(seen, keep=1000)
            await asyncio.sleep(POLL_S)
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the client went away
    return response


def _forget_finished(seen: dict[str, tuple[str, object]], *, keep: int) -> None:
    """Bound the memory of a long-lived stream: forget the oldest jobs beyond `keep`."""
    while len(seen) > keep:
        seen.pop(next(iter(seen)))
