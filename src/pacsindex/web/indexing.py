"""`/api/index/*`: start and stop the background indexing run, its status, and the files it could not read."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request

from pacsindex.accounts import audit
from pacsindex.errors import Forbidden, IndexNotFound, StoreError
from pacsindex.index import store
from pacsindex.sources.smb import nas
from pacsindex.web.models import IndexStart, IndexStatus, Problem, Problematic, ProblemPage
from pacsindex.web.security import SignedIn, client_address, state
from pacsindex.web.wording import for_staff

router = APIRouter(prefix="/index", tags=["indexing"])

NO_INDEX = "there is no index yet: start indexing on the Indexing page"


@contextmanager
def index_reader(db: Any) -> Iterator[sqlite3.Connection]:
    """A read-only connection to an index that has been indexed at least once (404 otherwise)."""
    try:
        conn = store.connect(db, create=False, readonly=True)
    except IndexNotFound:
        raise IndexNotFound(NO_INDEX) from None
    try:
        if not store.has_index(conn):
            raise IndexNotFound(NO_INDEX)
        yield conn
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the index: {exc}") from exc
    finally:
        conn.close()


def page_status(request: Request) -> dict[str, Any]:
    st = state(request)
    status = st.jobs.status()
    return {**status, "message": for_staff(status.get("message")), "timezone": st.settings.timezone}


@router.get("/status", response_model=IndexStatus)
def index_status(request: Request) -> dict[str, Any]:
    """Progress of the current (or last) run: counters, percent, files/s, ETA, roots; answered from memory."""
    return page_status(request)


@router.post(
    "/start",
    status_code=202,
    response_model=IndexStatus,
    responses={400: {"model": Problem}, 403: {"model": Problem}, 409: {"model": Problem}},
)
def index_start(
    request: Request,
    session: SignedIn,
    body: Annotated[IndexStart | None, Body()] = None,
) -> dict[str, Any]:
    """Start indexing the configured roots (or, for an admin, the roots given) in the background.
    409 while a run is going."""
    st = state(request)
    configured = nas.indexing_roots(st.settings)  # the settings' roots, then the saved NAS's
    roots = list(body.roots) if body is not None and body.roots else configured
    if not session.user.is_admin and not set(roots) <= set(configured):
        raise Forbidden("only an admin may index folders other than the configured roots")
    st.jobs.start(roots, started_by=session.user.name)
    st.audit.record(audit.INDEX_START, session.user.name, client_address(request), roots=roots)
    return page_status(request)


@router.post("/stop", response_model=IndexStatus, responses={409: {"model": Problem}})
def index_stop(request: Request, session: SignedIn) -> dict[str, Any]:
    """Stop the run after the files in hand; the next run resumes where it stopped. 409 when none runs."""
    st = state(request)
    st.jobs.stop()
    st.audit.record(audit.INDEX_STOP, session.user.name, client_address(request))
    return page_status(request)


@router.get("/errors", response_model=ProblemPage, responses={404: {"model": Problem}})
def index_errors(
    request: Request,
    kind: Literal["error", "non_dicom", "note"] = Query(
        "error", description="unreadable files, non-DICOM files, or files read with a note on what was odd"
    ),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=100_000_000),
) -> ProblemPage:
    """Files (and folders) that could not be read, or files that are not DICOM, a page at a time."""
    with index_reader(state(request).settings.db) as conn:
        rows = store.problems(conn, kind, limit + 1, offset)
    return ProblemPage(
        items=[Problematic(**r) for r in rows[:limit]],
        kind=kind,
        limit=limit,
        offset=offset,
        has_more=len(rows) > limit,
    )
