"""The operations routes: `GET /healthz` (no session, no patient data) for monitoring; the indexing schedule
(`GET /api/index/schedule`, admins `PUT` it: interval, night time, paused); access reports for one patient
(`/api/reports/*`, admins only) as JSON, CSV or PDF; the audit export as CSV for a date range. The work is
in `pacsindex.ops`; this module translates HTTP and writes the audit entries.

`startup` and `shutdown` run with the app's lifespan: the schedule starts, sends to Orthanc that a stop
left unfinished resume; at the end the schedule stops, a running indexing run and running sends stop
between files (both resume next time) and are audited as stopped.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from pacsindex.accounts import audit
from pacsindex.config.settings import Settings
from pacsindex.errors import Conflict, InvalidQuery
from pacsindex.ops import reports
from pacsindex.ops.backup import ServiceLock
from pacsindex.ops.health import Health, disk_warning
from pacsindex.ops.pdf import report_pdf
from pacsindex.ops.retention import purge
from pacsindex.ops.scheduler import SCHEDULER, Scheduler
from pacsindex.sources.smb import nas
from pacsindex.web import orthanc as orthanc_web
from pacsindex.web.models import Problem
from pacsindex.web.security import Admin, admin, client_address, signed_in, state

log = logging.getLogger(__name__)

SYSTEM = "system"  # who the service itself acts as in the audit log (the nightly purge, shutdown)


@dataclass
class Ops:
    scheduler: Scheduler
    health: Health
    service_lock: ServiceLock | None = None


def install(app: FastAPI, settings: Settings, source_for: Any, clock: Any = time.time) -> None:
    web = app.state.pacsindex

    def roots() -> list[str]:
        return nas.indexing_roots(settings)

    def scheduled(what: str, detail: dict[str, Any]) -> None:
        action = audit.INDEX_START if what == "started" else audit.INDEX_SCHEDULE
        web.audit.record(action, SCHEDULER, None, outcome=what, **detail)

    def nightly_purge() -> None:
        done = purge(settings, now=clock())
        web.audit.record(audit.PURGE, SCHEDULER, None, **done.counts, before=done.before)

    app.state.ops = Ops(
        scheduler=Scheduler(
            web.jobs, settings, roots=roots, on_event=scheduled, after_full=nightly_purge, clock=clock
        ),
        health=Health(settings, roots, source_for),
    )
    app.include_router(public)
    app.include_router(schedule_router)
    app.include_router(reports_router)


def ops(request: Request) -> Ops:
    found: Ops = request.app.state.ops
    return found


def startup(app: FastAPI) -> None:
    found: Ops = app.state.ops
    settings: Settings = app.state.pacsindex.settings
    try:
        found.service_lock = ServiceLock(settings.data_path).__enter__()
    except Conflict:
        log.warning("another pacsindex serve uses %s; a restore will wait for both", settings.data_path)
    found.scheduler.start()
    resumed = orthanc_web.resume(app)
    if resumed:
        log.info("resumed %d sends to Orthanc", len(resumed))


def shutdown(app: FastAPI) -> None:
    found: Ops = app.state.ops
    web = app.state.pacsindex
    found.scheduler.stop()
    if web.jobs.running:
        web.jobs.shutdown()
        web.audit.record(audit.INDEX_STOP, SYSTEM, None, reason="the service stopped; the next run resumes")
    orthanc_web.shutdown(app)  # each stopped send is audited as "stopped" by its own event
    if found.service_lock is not None:
        found.service_lock.__exit__(None, None, None)
        found.service_lock = None


# -- /healthz ----------------------------------------------------------------------------------------

public = APIRouter(tags=["operations"])


class HealthOut(BaseModel):
    ok: bool = Field(description="the index answers, every root answers and the disk is not nearly full")
    index: dict[str, Any]
    nas: dict[str, Any]
    disk: dict[str, Any]


@public.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
def healthz(request: Request) -> Response:
    """For monitoring, without signing in: index reachable, NAS roots reachable (how many), the last
    indexing run, free space on the data directory's disk. 503 when something is wrong. No patient data."""
    body = ops(request).health.check()
    return Response(
        HealthOut(**body).model_dump_json(),
        status_code=200 if body["ok"] else 503,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


# -- the schedule ------------------------------------------------------------------------------------

schedule_router = APIRouter(prefix="/api/index", tags=["indexing"], dependencies=[Depends(signed_in)])


class ScheduleOut(BaseModel):
    every_minutes: float
    full_at: str
    paused: bool
    next_run: str | None = Field(description="the next scheduled pass, practice time; null when paused")
    next_kind: str | None = Field(description="incremental or full")
    next_full: str | None = None
    last: dict[str, Any] | None = Field(description="the last scheduled pass: kind, at, outcome, message")
    warnings: list[str] = Field(description="what an admin should look at: a failed pass, a full disk")


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    every_minutes: float | None = Field(default=None, ge=0, le=7 * 24 * 60, description="0: none")
    full_at: Annotated[str, Field(pattern=r"^(([01]?[0-9]|2[0-3]):[0-5][0-9])?$")] | None = None
    paused: bool | None = None


def _schedule(request: Request) -> dict[str, Any]:
    status = ops(request).scheduler.status()
    warnings = []
    if status["last_failed"]:
        warnings.append(f"The last scheduled indexing pass failed: {status['last_failed']}")
    _disk, disk = disk_warning(state(request).settings)
    if disk:
        warnings.append(disk[0].upper() + disk[1:])
    return {**status, "warnings": warnings}


@schedule_router.get("/schedule", response_model=ScheduleOut)
def get_schedule(request: Request) -> dict[str, Any]:
    """When the index is brought up to date by itself: interval, nightly full pass, next run, warnings."""
    return _schedule(request)


@schedule_router.put(
    "/schedule", response_model=ScheduleOut, responses={400: {"model": Problem}, 403: {"model": Problem}}
)
def put_schedule(body: ScheduleIn, request: Request, session: Admin) -> dict[str, Any]:
    """Change the interval or the night time, or pause (`paused: true`) and resume the schedule."""
    changes = body.model_dump(exclude_none=True)
    ops(request).scheduler.change(**changes)
    state(request).audit.record(audit.INDEX_SCHEDULE, session.user.name, client_address(request), **changes)
    return _schedule(request)


# -- access reports and the audit export ----------------------------------------------------------------

reports_router = APIRouter(
    prefix="/api/reports",
    tags=["reports"],
    dependencies=[Depends(signed_in), Depends(admin)],
    responses={403: {"model": Problem}},
)


class PatientOut(BaseModel):
    PatientID: str
    PatientName: str
    PatientBirthDate: str | None = None
    series: int


@reports_router.get("/patients", response_model=list[PatientOut], responses={400: {"model": Problem}})
def report_patients(
    request: Request, session: Admin, q: Annotated[str, Query(min_length=1, max_length=200)]
) -> list[dict[str, Any]]:
    """Patients whose name or ID holds every word of `q`: pick the one the report is for."""
    st = state(request)
    found = reports.find_patients(st.settings.db, q)
    st.audit.record(audit.SEARCH, session.user.name, client_address(request), q=q, purpose="access report")
    return found


@reports_router.get(
    "/access",
    responses={
        200: {"content": {"text/csv": {}, "application/pdf": {}}},
        400: {"model": Problem},
        404: {"model": Problem},
    },
)
def access_report(
    request: Request,
    session: Admin,
    patient_id: Annotated[
        str, Query(max_length=200, description="the PatientID (from /api/reports/patients)")
    ],
    name: Annotated[
        str | None, Query(max_length=400, description="the name, for a patient with no ID")
    ] = None,
    format: Literal["json", "csv", "pdf"] = "json",
) -> Response:
    """Every access to one patient's records (POPIA s23): searches that listed them, opened series, shares
    with their "for" note, downloads by recipients, sends to Orthanc, DICOMweb retrievals; time, who and
    address. As JSON, CSV or a PDF to hand to the patient."""
    st = state(request)
    if not patient_id and not name:
        raise InvalidQuery("give patient_id, or name for a patient without an ID")
    report = reports.access_report(
        st.settings.db, patient_id, tz=st.settings.tz, now=datetime.now(timezone.utc), name=name
    )
    st.audit.record(
        audit.ACCESS_REPORT,
        session.user.name,
        client_address(request),
        PatientID=patient_id,
        format=format,
        accesses=len(report.accesses),
    )
    stem = f"access-report-{_safe(patient_id or 'patient')}"
    if format == "csv":
        return Response(
            reports.report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
        )
    if format == "pdf":
        return Response(
            report_pdf(report),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{stem}.pdf"'},
        )
    return Response(_json(report), media_type="application/json", headers={"Cache-Control": "no-store"})


@reports_router.get("/audit.csv", responses={200: {"content": {"text/csv": {}}}, 400: {"model": Problem}})
def audit_export(
    request: Request,
    session: Admin,
    date_from: Annotated[str, Query(max_length=10, description="YYYY-MM-DD, practice time")],
    date_to: Annotated[str, Query(max_length=10, description="YYYY-MM-DD, included")],
) -> StreamingResponse:
    """The audit log from the start of `date_from` to the end of `date_to` as CSV."""
    st = state(request)
    since, until = reports.date_range(date_from, date_to, st.settings.tz)
    st.audit.record(
        audit.AUDIT_EXPORT, session.user.name, client_address(request), date_from=date_from, date_to=date_to
    )
    return StreamingResponse(
        reports.audit_csv(st.settings.db, since, until, st.settings.tz),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{date_from}-{date_to}.csv"'},
    )


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:64]


def _json(report: reports.AccessReport) -> str:
    return json.dumps(asdict(report), ensure_ascii=False)
