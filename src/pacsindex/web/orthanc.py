"""The Orthanc routes: admins set and test the connection (`GET/PUT /api/settings/orthanc`,
`POST /api/settings/orthanc/test`); staff send a series (`POST /api/orthanc/sends`, which answers at once
with a send id) and watch it (`GET /api/orthanc/sends/{id}`). Sends run in background threads (`SendJobs`);
the domain work is `pacsindex.orthanc.client`. Settings changes, tests and each send (when it starts and
when it
ends, with its counts) go to the audit log. The password is write-only: no answer ever carries it.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from pacsindex.accounts import audit
from pacsindex.config.settings import Settings
from pacsindex.errors import NotFound, PacsIndexError
from pacsindex.orthanc import client as orthanc
from pacsindex.orthanc.client import Connection, OrthancClient, SendProgress, send_series, series_files
from pacsindex.web.models import Problem, Text
from pacsindex.web.security import Admin, SignedIn, admin, client_address, signed_in, state

log = logging.getLogger(__name__)


@dataclass
class SendJob:
    id: str
    SeriesKey: str
    started_by: str
    started_at: float
    state: str = "running"  # running, completed, failed
    progress: SendProgress | None = None
    error: str | None = None
    finished_at: float | None = None

    def snapshot(self) -> dict[str, Any]:
        p = self.progress or SendProgress(SeriesKey=self.SeriesKey, total=0)
        return {
            "id": self.id,
            "SeriesKey": self.SeriesKey,
            "started_by": self.started_by,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "state": self.state,
            "error": self.error,
            **{k: v for k, v in p.as_dict().items() if k != "SeriesKey"},
        }


Finished = Callable[[SendJob], None]


class SendJobs:
    """Sends running in background threads, each with an id to ask for its progress. One send per series
    at a time: asking again while one runs gives the running one."""

    KEEP = 200  # finished sends remembered for the page to show

    def __init__(
        self, db: str | os.PathLike[str], *, settings: Any = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._jobs: dict[str, SendJob] = {}
        self._lock = threading.Lock()

    def start(
        self, key: str, conn: Connection, user: str, *, on_done: Finished | None = None
    ) -> tuple[SendJob, bool]:
        """(the job, True if it was started now; False if that series was already being sent)."""
        series, _files = series_files(self.db, key)  # NotFound now, not in the thread
        key = series["SeriesKey"]
        with self._lock:
            for job in self._jobs.values():
                if job.SeriesKey == key and job.state == "running":
                    return job, False
            job = SendJob(secrets.token_hex(8), key, user, self.clock())
            self._jobs[job.id] = job
            self._forget_old()
        threading.Thread(
            target=self._run, args=(job, conn, on_done), name=f"orthanc-send-{job.id}", daemon=True
        ).start()
        return job, True

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFound("no such send to Orthanc (the server may have restarted)")
            return job.snapshot()

    def wait(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job's snapshot once it has finished, or as it is after `timeout` seconds (for shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.get(job_id)
            if snap["state"] != "running" or time.monotonic() >= deadline:
                return snap
            time.sleep(0.05)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state != "running"]
        for job in sorted(finished, key=lambda j: j.started_at)[: max(0, len(finished) - self.KEEP)]:
            del self._jobs[job.id]

    def _set(self, job: SendJob, **values: Any) -> None:
        with self._lock:
            for name, value in values.items():
                setattr(job, name, value)

    def _run(self, job: SendJob, conn: Connection, on_done: Finished | None) -> None:
        try:
            with OrthancClient(conn) as client:
                final = send_series(
                    self.db, job.SeriesKey, client,
                    on_progress=lambda p: self._set(job, progress=p), settings=self.settings,
                )
            self._set(job, progress=final, state="completed", finished_at=self.clock())
        except PacsIndexError as exc:
            log.warning("send to Orthanc %s stopped: %s", job.id, exc)
            self._set(job, state="failed", error=str(exc), finished_at=self.clock())
        except Exception as exc:  # a thread must not die silently: the page would poll forever
            log.error("send to Orthanc %s failed", job.id, exc_info=exc)
            self._set(job, state="failed", error="internal error; the server log has the details",
                      finished_at=self.clock())
        if on_done is not None:
            try:
                on_done(job)
            except Exception as exc:
                log.error("after the send to Orthanc %s", job.id, exc_info=exc)




def install(app: FastAPI, settings: Settings) -> None:
    """Add the Orthanc routes and the background sends to the app."""
    app.state.orthanc_sends = SendJobs(settings.db, settings=settings)
    app.include_router(settings_router)
    app.include_router(sends_router)


def sends(request: Request) -> SendJobs:
    jobs: SendJobs = request.app.state.orthanc_sends
    return jobs


# -- the JSON shapes ---------------------------------------------------------------------------------

OrthancUrl = Annotated[Text, Field(max_length=2048, description="Orthanc's REST address, e.g. http://pacs:8042")]
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
    state: str = Field(description="running, completed (see failed for files Orthanc did not take) or failed")
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
        audit.ORTHANC_SETTINGS, session.user.name, client_address(request),
        url=conn.url, orthanc_user=conn.user, password=changed,
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
            audit.ORTHANC_TEST, session.user.name, client_address(request),
            url=conn.url, outcome=type(exc).__name__,
        )
        raise
    st.audit.record(
        audit.ORTHANC_TEST, session.user.name, client_address(request),
        url=conn.url, outcome="ok", version=info.get("version"),
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
    who, client = session.user.name, client_address(request)

    def finished(job: SendJob) -> None:
        snap = job.snapshot()
        st.audit.record(
            audit.ORTHANC_SEND, who, client, SeriesKey=job.SeriesKey, send=job.id, state=job.state,
            **{k: snap[k] for k in ("total", "sent", "skipped", "failed")},
        )

    job, new = sends(request).start(body.SeriesKey, conn, who, on_done=finished)
    if new:
        st.audit.record(
            audit.ORTHANC_SEND, who, client, SeriesKey=job.SeriesKey, send=job.id, state="started",
            orthanc=conn.url,
        )
    return _shown(job.snapshot(), st.settings, already_running=not new)


@sends_router.get("/sends/{send_id}", response_model=SendOut, responses={404: {"model": Problem}})
def get_send(
    request: Request, send_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]
) -> dict[str, Any]:
    """How far a send has got: files done of total, sent, skipped (already in Orthanc), failed with why."""
    return _shown(sends(request).get(send_id), state(request).settings)


def _shown(snap: dict[str, Any], settings: Settings, **extra: Any) -> dict[str, Any]:
    def when(ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, settings.tz).isoformat(timespec="seconds")

    return {**snap, "started_at": when(snap["started_at"]), "finished_at": when(snap["finished_at"]), **extra}
