"""`/api/index/events`, `/api/index/folders`, `/api/index/runs`: indexing progress pushed to the page as
server-sent events (one `status` event whenever it changes, instead of the page polling), the folders a
Start will index (read fresh each time, so a NAS saved a moment ago is in the list), and the history of runs
for the admin's Indexing page."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from pacsindex.sources.smb import nas
from pacsindex.web.indexing import index_reader, page_status
from pacsindex.web.models import Problem
from pacsindex.web.security import admin, state

__all__ = ["EVENTS_PATH", "router"]

router = APIRouter(prefix="/index", tags=["indexing"])

EVENTS_PATH = "/api/index/events"
# How often the stream looks at the status (in memory while a run goes), and how long one stream lasts
# before the browser reconnects (which checks the session again).
RUNNING_TICK_S = 0.5
IDLE_TICK_S = 2.0
KEEPALIVE_S = 15.0
STREAM_LIFETIME_S = 300.0


class Folders(BaseModel):
    folders: list[str]


class RunOut(BaseModel):
    id: int
    started_at: str
    finished_at: str | None = None
    status: str
    roots: list[str]
    files_processed: int
    files_read: int
    files_removed: int
    errors: int
    non_dicom: int
    message: str | None = None


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "`status` events"}},
)
async def index_events(request: Request) -> StreamingResponse:
    """The indexing status (as GET /api/index/status) as server-sent events: one at once, then one
    whenever it changes. The stream ends after a few minutes; EventSource reconnects by itself."""

    async def stream() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        last = ""
        started = sent = time.monotonic()
        closing = getattr(request.app.state, "closing", None)
        while time.monotonic() - started < STREAM_LIFETIME_S:
            if closing is not None and closing.is_set():
                return  # the server is shutting down: end the stream, the browser reconnects later
            status = await run_in_threadpool(page_status, request)
            text = json.dumps(status, separators=(",", ":"))
            now = time.monotonic()
            if text != last:
                last, sent = text, now
                yield f"event: status\ndata: {text}\n\n"
            elif now - sent > KEEPALIVE_S:
                sent = now
                yield ": still here\n\n"
            await asyncio.sleep(RUNNING_TICK_S if status.get("running") else IDLE_TICK_S)
            if await request.is_disconnected():
                return

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


@router.get("/folders", response_model=Folders)
def index_folders(request: Request) -> dict[str, list[str]]:
    """The folders Start indexes: the configured roots, then the saved NAS."""
    return {"folders": nas.indexing_roots(state(request).settings)}


@router.get(
    "/runs",
    response_model=list[RunOut],
    dependencies=[Depends(admin)],
    responses={403: {"model": Problem}, 404: {"model": Problem}},
)
def index_runs(request: Request, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[dict[str, Any]]:
    """The latest indexing runs, newest first: when, which folders, how many files, how it ended."""
    with index_reader(state(request).settings.db) as conn:
        rows = conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [{**dict(r), "roots": json.loads(r["roots"])} for r in rows]
