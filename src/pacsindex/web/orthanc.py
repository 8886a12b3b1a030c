"""The Orthanc routes: admins set and test the connection (`GET/PUT /api/settings/orthanc`,
`POST /api/settings/orthanc/test`); staff send a series (`POST /api/orthanc/sends`, which answers at once
with a send id), watch it (`GET /api/orthanc/sends/{id}`) and cancel it. Sends run in the domain
(`pacsindex.orthanc.sends`, kept in the index so a restart resumes them); this module only translates HTTP.
Settings changes, tests and each send (when it starts, resumes and ends, with its counts) go to the audit
log. The password is write-only: no answer ever carries it.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from pacsindex.accounts import audit
from pacsindex.config.settings import Settings
from pacsindex.errors import PacsIndexError
from pacsindex.index.clock import shown
from pacsindex.orthanc import client as orthanc
from pacsindex.orthanc.client import Connection, OrthancClient
from pacsindex.orthanc.sends import SendJobs
from pacsindex.web.models import Problem, Text
from pacsindex.web.security import Admin, SignedIn, admin, client_address, signed_in, state

log = logging.getLogger(__name__)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the Orthanc routes and the background sends to the app (`resume` and `shutdown` go with the
    app's lifespan). Each send's start, resumption and end (completed, failed, cancelled, or stopped by a
    shutdown) is an audit entry under the name of whoever started it."""
    web = app.state.pacsindex

    def event(snap: dict[str, Any], what: str) -> None:
        counts = {k: snap[k] for k in ("total", "done", "sent", "skipped", "failed")}
        web.audit.record(
            audit.ORTHANC_SEND,
            snap["started_by"],
            snap["client"],
            SeriesKey=snap["SeriesKey"],
            send=snap["id"],
            state=what,
            orthanc=snap["orthanc_url"],
            **counts,
        )

    app.state.orthanc_sends = SendJobs(settings.db, settings=settings, on_event=event)
    app.include_router(settings_router)
    app.include_router(sends_router)


def resume(app: FastAPI) -> list[str]:
    """At start-up: carry on the sends the last shutdown (or a crash) stopped."""
    settings: Settings = app.state.pacsindex.settings
    try:
        conn: Connection | None = orthanc.connection_for(settings.data_path, env={})
    except PacsIndexError:
        conn = None
    jobs: SendJobs = app.state.orthanc_sends
    return jobs.resume(conn)


def shutdown(app: FastAPI, timeout: float = 30.0) -> list[str]:
    jobs: SendJobs = app.state.orthanc_sends
    return jobs.shutdown(timeout)


def sends(request: Request) -> SendJobs:
    jobs: SendJobs = request.app.state.orthanc_sends
    return jobs


# -- the JSON shapes ---------------------------------------------------------------------------------

OrthancUrl = Annotated[
    Text, Field(max_length=2048, description="Orthanc's REST address, e.g. http://pacs:8042")
]
OrthancUser = Annotated[Text, Field(max_length=256)]
OrthancPassword = Annotated[Text, Field(max_length=1024)]


class OrthancSettingsOut(BaseModel):
    url: str
    user: str
    password_set: bool = Field(description="whether a password is saved (it is never returned)")


class OrthancSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: OrthancUrl = ""
    user: OrthancUser = ""
    password: OrthancPassword | None = Field(default=None, description="omit or null to keep the saved one")
    clear_password: bool = False


class OrthancTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: OrthancUrl | None = Field(default=None, description="default: the saved address")
    user: OrthancUser | None = None
    password: OrthancPassword | None = Field(default=None, description="default: the saved password")


class OrthancTestOut(BaseModel):
    ok: bool
    url: str
    name: str | None = None
    version: str | None = None
    dicom_aet: str | None = None


class OrthancConfigured(BaseModel):
    configured: bool


class NewSendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    SeriesKey: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{40}$", description="from a search result")]


class FailureOut(BaseModel):
    path: str
    InstanceNumber: int | None = None
    reason: str


class SendOut(BaseModel):
    id: str
    SeriesKey: str
    started_by: str
    started_at: str
    finished_at: str | None = None
    state: str = Field(
        description="running, completed (see failed for files Orthanc did not take), failed, cancelled, "
        "or interrupted (the service stopped; it resumes at the next start)"
    )
    error: str | None = Field(default=None, description="why the whole send stopped, when state is failed")
    total: int
    done: int
    sent: int
    skipped: int = Field(description="instances Orthanc already had: not sent again")
    failed: int
    failures: list[FailureOut]
    already_running: bool = False


# -- admin: the connection ---------------------------------------------------------------------------

settings_router = APIRouter(
    prefix="/api/settings/orthanc",
    tags=["orthanc"],
    dependencies=[Depends(signed_in), Depends(admin)],
    responses={403: {"model": Problem}},
)


@settings_router.get("", response_model=OrthancSettingsOut)
def get_settings(request: Request) -> dict[str, Any]:
    """The saved Orthanc address and user, and whether a password is saved."""
    return orthanc.load_connection(state(request).settings.data_path).public()


@settings_router.put("", response_model=OrthancSettingsOut, responses={400: {"model": Problem}})
def put_settings(body: OrthancSettingsIn, request: Request, session: Admin) -> dict[str, Any]:
    """Save the address and user; the password only when one is given (`clear_password` removes it)."""
    st = state(request)
    conn = orthanc.save_connection(
        st.settings.data_path,
        url=body.url,
        user=body.user,
        password=body.password or None,
        clear_password=body.clear_password,
    )
    changed = "cleared" if body.clear_password else ("set" if body.password else "unchanged")
    st.audit.record(
        audit.ORTHANC_SETTINGS,
        session.user.name,
        client_address(request),
        url=conn.url,
        orthanc_user=conn.user,
        password=changed,
    )
    return conn.public()


@settings_router.post(
    "/test",
    response_model=OrthancTestOut,
    responses={400: {"model": Problem}, 502: {"model": Problem}, 503: {"model": Problem}},
)
def test_settings(request: Request, session: Admin, body: OrthancTestIn | None = None) -> dict[str, Any]:
    """Ask Orthanc for `GET /system` with the given values (or the saved ones): its name and version, or
    a message saying what is wrong (unreachable, password refused, not an Orthanc)."""
    st = state(request)
    body = body or OrthancTestIn()
    saved_conn = orthanc.load_connection(st.settings.data_path)
    password = body.password or None
    if password is None and body.url and orthanc.check_url(body.url) != saved_conn.url:
        password = ""  # the saved password goes only to the saved address, never to one just typed
    conn = orthanc.connection_for(
        st.settings.data_path, url=body.url, user=body.user, password=password, env={}
    )
    try:
        with OrthancClient(conn) as client:
            info = client.test_connection()
    except PacsIndexError as exc:
        st.audit.record(
            audit.ORTHANC_TEST,
            session.user.name,
            client_address(request),
            url=conn.url,
            outcome=type(exc).__name__,
        )
        raise
    st.audit.record(
        audit.ORTHANC_TEST,
        session.user.name,
        client_address(request),
        url=conn.url,
        outcome="ok",
        version=info.get("version"),
    )
    return {"ok": True, **info}


# -- staff: sending a series -------------------------------------------------------------------------

sends_router = APIRouter(prefix="/api/orthanc", tags=["orthanc"], dependencies=[Depends(signed_in)])


@sends_router.get("", response_model=OrthancConfigured)
def configured(request: Request) -> dict[str, Any]:
    """Whether an admin has set Orthanc up (the series page offers "Send to Orthanc" only then)."""
    return {"configured": bool(orthanc.load_connection(state(request).settings.data_path).url)}


@sends_router.post(
    "/sends",
    status_code=202,
    response_model=SendOut,
    responses={400: {"model": Problem}, 404: {"model": Problem}},
)
def start_send(body: NewSendIn, request: Request, session: SignedIn) -> dict[str, Any]:
    """Start sending the series' files to Orthanc in the background; poll `GET /api/orthanc/sends/{id}`.
    A series already being sent answers with that send (`already_running`)."""
    st = state(request)
    conn = orthanc.connection_for(st.settings.data_path, env={})
    snap, new = sends(request).start(body.SeriesKey, conn, session.user.name, client_address(request))
    return _shown(snap, st.settings, already_running=not new)


@sends_router.get("/sends", response_model=list[SendOut])
def list_sends(request: Request) -> list[dict[str, Any]]:
    """The latest sends, newest first (they are kept in the index, so a restart loses none)."""
    settings = state(request).settings
    return [_shown(s, settings) for s in sends(request).recent()]


@sends_router.post(
    "/sends/{send_id}/cancel",
    response_model=SendOut,
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
def cancel_send(
    request: Request, session: SignedIn, send_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]
) -> dict[str, Any]:
    """Stop a running send after the file in hand (what was sent stays in Orthanc). 409 when it is not
    running."""
    return _shown(sends(request).cancel(send_id), state(request).settings)


@sends_router.get("/sends/{send_id}", response_model=SendOut, responses={404: {"model": Problem}})
def get_send(request: Request, send_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]) -> dict[str, Any]:
    """How far a send has got: files done of total, sent, skipped (already in Orthanc), failed with why."""
    return _shown(sends(request).get(send_id), state(request).settings)


def _shown(snap: dict[str, Any], settings: Settings, **extra: Any) -> dict[str, Any]:
    started, finished = shown(snap["started_at"], settings.tz), shown(snap["finished_at"], settings.tz)
    return {**snap, "started_at": started, "finished_at": finished, **extra}
