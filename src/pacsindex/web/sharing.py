"""Share links for staff: `POST /api/shares/preview` says what a link would hold (and which series may
carry burned-in names, before a de-identified link is made); `POST /api/shares` (also `POST
/share/create`, the seed's name) makes a link for a whole study or the series ticked, and shows its token,
a made-up passcode and a message to send this once; `GET /api/shares` lists links with their status and
downloads; `POST /api/shares/{id}/revoke` ends one; `POST /api/shares/{id}/unlock` (admins) lifts a
passcode lockout; `GET /api/shares/{id}/log` shows who used it; `GET/PUT /api/settings/practice` (admins)
the practice details recipients see. Signed-in and CSRF-checked like every `/api/*` route; changes go to
the audit log.

Staff see and revoke the links they made; admins see and revoke every link. `install(app, ...)` builds the
share store and the stream limiter and adds these routes and the recipient's (`web.recipient`).
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pacsindex.accounts import audit
from pacsindex.accounts.auth import Session
from pacsindex.config.settings import Settings
from pacsindex.errors import Conflict, Forbidden, PacsIndexError
from pacsindex.index import store
from pacsindex.index.clock import Clock
from pacsindex.share import service
from pacsindex.share.limits import StreamLimiter
from pacsindex.share.links import MAX_NOTE, MAX_PAGE, Shares
from pacsindex.share.store import Share
from pacsindex.web import recipient
from pacsindex.web.indexing import index_reader
from pacsindex.web.models import Problem, Text
from pacsindex.web.recipient import Sharing, sharing
from pacsindex.web.security import Admin, SignedIn, client_address, signed_in, state
from pacsindex.web.sharepages import NO_STORE

_SHARE_PATH = re.compile(r"^/share/(?!create$)[^/]+")
_SHARE_IN_TEXT = re.compile(r"/share/(?!create\b)[^/\s\"'?#]+")


def redact_path(path: str) -> str:
    """A request path fit for the log: a share link's token replaced, so tokens never reach a log."""
    return _SHARE_PATH.sub("/share/…", path)


class RedactShareLinks(logging.Filter):
    """Replaces share tokens in uvicorn's own log lines (its access log is off, but a deployment may turn
    it on, and an error line may quote a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SHARE_IN_TEXT.sub("/share/…", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _SHARE_IN_TEXT.sub("/share/…", record.msg)
        return True


def _redact_uvicorn_logs() -> None:
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactShareLinks) for f in logger.filters):
            logger.addFilter(RedactShareLinks())


def install(app: FastAPI, settings: Settings, *, clock: Clock, hasher: PasswordHasher | None = None) -> None:
    """Add share links to the app: the store (`settings.shares_path`), the stream limit, the routes."""
    shares = Shares.from_settings(settings, clock=clock, hasher=hasher)
    limiter = StreamLimiter(
        settings.share_max_streams,
        per_link=settings.share_max_streams_per_link,
        per_client=settings.share_max_streams_per_client,
    )
    app.state.sharing = Sharing(shares, limiter, settings)
    app.include_router(staff)
    app.include_router(recipient.router)
    _redact_uvicorn_logs()


# -- the JSON shapes -----------------------------------------------------------------------------------


SeriesKeyText = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{40}$")]


class ShareScope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    SeriesKey: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{40}$", description="the series shared from")]
    whole_study: bool = Field(
        default=False, description="every series of SeriesKey's study (narrowed to series_keys if given)"
    )
    series_keys: Annotated[list[SeriesKeyText] | None, Field(max_length=500)] = Field(
        default=None, description="the series ticked; without whole_study, exactly these"
    )
    deidentify: bool = Field(default=False, description="PS3.15 Basic Profile: identifiers removed")


class NewShareIn(ShareScope):
    expires_in: Annotated[
        int | None,
        Field(ge=60, le=366 * 24 * 3600, description="seconds the link lasts; default share_default_hours"),
    ] = None
    passcode: Annotated[Text | None, Field(min_length=6, max_length=128)] = Field(
        default=None, description="the recipient must type it (tell them another way than the link)"
    )
    generate_passcode: bool = Field(default=False, description="make up a readable passcode, shown once")
    max_downloads: Annotated[int | None, Field(ge=1, le=1000)] = Field(
        default=None, description="zip downloads allowed; such a link serves no single files"
    )
    note: Annotated[Text | None, Field(max_length=MAX_NOTE)] = Field(
        default=None, description="who it is for, e.g. 'Dr Naidoo, Milpark orthopaedics'"
    )
    accept_burned_in: bool = Field(
        default=False, description="de-identify although some series may carry names burned into pixels"
    )


class SeriesBrief(BaseModel):
    SeriesKey: str
    Modality: str | None = None
    SeriesNumber: int | None = None
    SeriesDescription: str | None = None
    file_count: int | None = None
    total_size: int | None = None


class BurnedIn(BaseModel):
    SeriesKey: str
    Modality: str | None = None
    reason: str


class Preview(BaseModel):
    series: list[SeriesBrief]
    file_count: int
    total_size: int
    burned_in: list[BurnedIn] = Field(
        description="series whose pixels may carry names (matters when de-identifying)"
    )


class ShareOut(BaseModel):
    id: int
    SeriesKey: str
    series_keys: list[str] = Field(description="the series bound to the link when it was made")
    series: list[SeriesBrief] = Field(description="those still in the index")
    note: str | None = None
    deidentified: bool = False
    created_by: str
    created_at: str
    expires_at: str
    has_passcode: bool
    max_downloads: int | None = None
    downloads: int
    revoked_at: str | None = None
    revoked_by: str | None = None
    locked_until: str | None = None
    status: str = Field(description="active, expired, revoked, used_up or locked")
    PatientName: str | None = None
    PatientID: str | None = None
    StudyDate: str | None = None
    Modality: str | None = None
    SeriesDescription: str | None = None
    file_count: int | None = Field(default=None, description="null when the series left the index")
    total_size: int | None = None


class CreatedShare(ShareOut):
    token: str = Field(description="shown this once: only its hash is kept")
    url: str = Field(description="the link to send; the token is its last part")
    passcode: str | None = Field(default=None, description="the made-up passcode, shown this once")
    message: str = Field(description="a text to send with the link (the passcode goes another way)")


class Practice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[Text, Field(max_length=120)] = ""
    address: Annotated[Text, Field(max_length=300)] = ""
    phone: Annotated[Text, Field(max_length=40)] = ""


class AccessOut(BaseModel):
    id: int
    at: str
    kind: str = Field(description="page, passcode, files, download or file")
    client: str | None = None
    user_agent: str | None = None
    outcome: str = Field(
        description="ok, incomplete, expired, revoked, bad_passcode, passcode_required, not_found, limited, "
        "locked or busy"
    )
    bytes_sent: int
    repeats: int = Field(default=1, description="identical refusals from this address within an hour")


# -- routes --------------------------------------------------------------------------------------------

staff = APIRouter(tags=["share links"], dependencies=[Depends(signed_in)])
ShareId = Annotated[int, Path(ge=1, le=2**62)]
_SERIES_FIELDS = (
    "PatientName",
    "PatientID",
    "StudyDate",
    "Modality",
    "SeriesDescription",
    "file_count",
    "total_size",
)


def _brief(series: dict[str, Any]) -> dict[str, Any]:
    return {k: series.get(k) for k in SeriesBrief.model_fields}


def _described(request: Request, items: list[Share]) -> list[dict[str, Any]]:
    """Each share with the series it is for, from the index (blank where the series have gone)."""
    sh = sharing(request)
    now = sh.shares.clock()
    out = [s.public(now) for s in items]
    try:
        with index_reader(sh.settings.db) as conn:
            keys = {k for s in items for k in s.series_keys}
            found = {k: store.get_series(conn, k) for k in keys}
    except PacsIndexError:  # no index, or it cannot be read: the links are still worth showing
        found = {}
    for row, share in zip(out, items, strict=True):
        present: list[dict[str, Any]] = [s for k in share.series_keys if (s := found.get(k)) is not None]
        first = present[0] if present else {}
        row.update({k: first.get(k) for k in _SERIES_FIELDS})
        row["series"] = [_brief(s) for s in present]
        if present:
            row["file_count"] = sum(int(s["file_count"] or 0) for s in present)
            row["total_size"] = sum(int(s["total_size"] or 0) for s in present)
        if len(present) > 1:
            row["SeriesDescription"] = f"{len(present)} series"
            row["Modality"] = ", ".join(dict.fromkeys(str(s["Modality"] or "") for s in present))
    return out


def _chosen(body: ShareScope, request: Request) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The series a link would hold, and those whose pixels may carry names (when de-identifying)."""
    sh = sharing(request)
    with index_reader(sh.settings.db) as conn:
        chosen = service.chosen_series(
            conn,
            study_of=body.SeriesKey if body.whole_study else None,
            series_keys=body.series_keys or ([] if body.whole_study else [body.SeriesKey]),
        )
        flagged = service.burned_in(conn, chosen, settings=sh.settings) if body.deidentify else []
    return chosen, flagged


def _own(session: Session, share: Share) -> None:
    if not session.user.is_admin and share.created_by.lower() != session.user.name.lower():
        raise Forbidden("only the staff member who made this link, or an admin, may see or change it")


def _create(body: NewShareIn, request: Request, session: Session) -> dict[str, Any]:
    sh, st = sharing(request), state(request)
    chosen, flagged = _chosen(body, request)
    if flagged and not body.accept_burned_in:
        reasons = "; ".join(f"{f['Modality'] or 'a series'}: {f['reason']}" for f in flagged)
        raise Conflict(
            "de-identifying cannot remove names burned into the pixels, and "
            f"{len(flagged)} of these series may carry them ({reasons}). Untick them, or confirm "
            "(accept_burned_in) that the images were checked"
        )
    made = sh.shares.create(
        [s["SeriesKey"] for s in chosen],
        session.user.name,
        expires_in_s=body.expires_in,
        passcode=body.passcode,
        generate_passcode=body.generate_passcode,
        max_downloads=body.max_downloads,
        note=body.note,
        deidentify=body.deidentify,
    )
    base = sh.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    first = chosen[0]
    st.audit.record(
        audit.SHARE_CREATE,
        session.user.name,
        client_address(request),
        share_id=made.share.id,
        SeriesKey=first["SeriesKey"],
        series_keys=list(made.share.series_keys),
        PatientName=first["PatientName"],
        PatientID=first["PatientID"],
        StudyDate=first["StudyDate"],
        Modality=first["Modality"],
        expires_at=made.share.public(made.share.created_at)["expires_at"],
        passcode=made.share.has_passcode,
        max_downloads=made.share.max_downloads,
        deidentified=made.share.deidentified,
        burned_in_accepted=bool(flagged),
        note=made.share.note,
    )
    out = _described(request, [made.share])[0]
    url = f"{base}/share/{made.token}"
    practice = service.practice(sh.settings.data_path)["name"]
    text = service.message(url, made.share, chosen, sh.settings.tz, practice)
    return {**out, "token": made.token, "url": url, "passcode": made.passcode, "message": text}


CREATE_DOC = (
    "Make a link to a whole study (`whole_study`), the series ticked (`series_keys`), or one series. The "
    "answer holds the token, the URL, a made-up passcode (`generate_passcode`) and a message to send, this "
    "once; only hashes are kept. `expires_in` is in seconds (default share_default_hours, at most "
    "share_max_hours). A de-identified link for series that may carry names burned into the pixels needs "
    "`accept_burned_in` (409 otherwise, saying which)."
)


@staff.post("/api/shares/preview", response_model=Preview, responses={404: {"model": Problem}})
def preview_share(body: ShareScope, request: Request, session: SignedIn) -> dict[str, Any]:
    """What a link would hold, and (with deidentify) which series may carry names in their pixels."""
    chosen, flagged = _chosen(body, request)
    return {
        "series": [_brief(s) for s in chosen],
        "file_count": sum(int(s["file_count"] or 0) for s in chosen),
        "total_size": sum(int(s["total_size"] or 0) for s in chosen),
        "burned_in": flagged,
    }


@staff.post(
    "/api/shares",
    status_code=201,
    response_model=CreatedShare,
    responses={400: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem}},
    description=CREATE_DOC,
)
def create_share(body: NewShareIn, request: Request, session: SignedIn) -> dict[str, Any]:
    return _create(body, request, session)


@staff.post(
    "/share/create",
    status_code=201,
    response_model=CreatedShare,
    responses={400: {"model": Problem}, 404: {"model": Problem}},
    description=CREATE_DOC + " The same as POST /api/shares.",
)
def create_share_seed(
    body: NewShareIn, request: Request, response: Response, session: SignedIn
) -> dict[str, Any]:
    response.headers.update(NO_STORE)  # outside /api/, so the app does not add it: the answer holds a token
    return _create(body, request, session)


@staff.get("/api/shares", response_model=list[ShareOut])
def list_shares(
    request: Request,
    session: SignedIn,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Links, newest first, with their status and download counts: your own, or every link for an admin."""
    mine = None if session.user.is_admin else session.user.name
    return _described(request, sharing(request).shares.recent(created_by=mine, limit=limit, offset=offset))


@staff.post(
    "/api/shares/{share_id}/revoke",
    response_model=ShareOut,
    responses={403: {"model": Problem}, 404: {"model": Problem}},
)
def revoke_share(share_id: ShareId, request: Request, session: SignedIn) -> dict[str, Any]:
    """End a link now; it answers 410 from then on. Revoking twice keeps the first time."""
    sh = sharing(request)
    _own(session, sh.shares.get(share_id))
    share = sh.shares.revoke(share_id, session.user.name)
    state(request).audit.record(
        audit.SHARE_REVOKE,
        session.user.name,
        client_address(request),
        share_id=share_id,
        SeriesKey=share.SeriesKey,
    )
    return _described(request, [share])[0]


@staff.get(
    "/api/shares/{share_id}/log",
    response_model=list[AccessOut],
    responses={403: {"model": Problem}, 404: {"model": Problem}},
)
def share_log(
    share_id: ShareId,
    request: Request,
    session: SignedIn,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Every use of the link, newest first: page views, passcodes, downloads (with bytes sent), refusals."""
    sh = sharing(request)
    _own(session, sh.shares.get(share_id))
    return sh.shares.access_log(share_id, limit=limit, offset=offset)


@staff.post(
    "/api/shares/{share_id}/unlock",
    response_model=ShareOut,
    responses={403: {"model": Problem}, 404: {"model": Problem}},
)
def unlock_share(share_id: ShareId, request: Request, session: Admin) -> dict[str, Any]:
    """Lift a passcode lockout now (admins only: after reaching the recipient another way)."""
    share = sharing(request).shares.unlock(share_id, session.user.name)
    state(request).audit.record(
        audit.SHARE_UNLOCK, session.user.name, client_address(request), share_id=share_id
    )
    return _described(request, [share])[0]


@staff.get("/api/settings/practice", response_model=Practice, responses={403: {"model": Problem}})
def get_practice(request: Request, session: Admin) -> dict[str, str]:
    """The practice's name, address and phone, as recipients see them on a share link's page."""
    return service.practice(sharing(request).settings.data_path)


@staff.put("/api/settings/practice", response_model=Practice, responses={403: {"model": Problem}})
def put_practice(body: Practice, request: Request, session: Admin) -> dict[str, str]:
    """Save the practice details shown to share recipients (and named in the message and README)."""
    saved = service.save_practice(sharing(request).settings.data_path, body.model_dump())
    state(request).audit.record(audit.PRACTICE_SETTINGS, session.user.name, client_address(request))
    return saved
