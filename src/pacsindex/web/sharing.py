"""Share links for staff: `POST /api/shares` (also `POST /share/create`, the seed's name) makes a link and
shows its token this once; `GET /api/shares` lists links with their status and downloads;
`POST /api/shares/{id}/revoke` ends one; `GET /api/shares/{id}/log` shows who used it. Signed-in and
CSRF-checked like every `/api/*` route; creating and revoking go to the audit log.

Staff see and revoke the links they made; admins see and revoke every link. `install(app, ...)` builds the
share store and the stream limiter and adds these routes and the recipient's (`web.recipient`).
"""

from __future__ import annotations

from typing import Annotated, Any

from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pacsindex.accounts import audit
from pacsindex.accounts.auth import Session
from pacsindex.config.settings import Settings
from pacsindex.errors import Forbidden, NotFound, PacsIndexError
from pacsindex.index import store
from pacsindex.share.download import StreamLimiter
from pacsindex.share.links import MAX_PAGE, Clock, Shares
from pacsindex.share.store import Share
from pacsindex.web import recipient
from pacsindex.web.indexing import index_reader
from pacsindex.web.logredact import install as install_redaction
from pacsindex.web.models import Problem, Text
from pacsindex.web.recipient import Sharing, sharing
from pacsindex.web.security import SignedIn, client_address, signed_in, state
from pacsindex.web.sharepages import NO_STORE


def install(app: FastAPI, settings: Settings, *, clock: Clock, hasher: PasswordHasher | None = None) -> None:
    """Add share links to the app: the store (`settings.shares_path`), the stream limit, the routes."""
    shares = Shares.from_settings(settings, clock=clock, hasher=hasher)
    app.state.sharing = Sharing(shares, StreamLimiter(settings.share_max_streams), settings)
    app.include_router(staff)
    app.include_router(recipient.router)
    install_redaction()  # share tokens out of uvicorn's own lines


# -- the JSON shapes -----------------------------------------------------------------------------------


class NewShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    SeriesKey: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{40}$", description="from a search result")]
    expires_in: Annotated[
        int | None,
        Field(ge=60, le=366 * 24 * 3600, description="seconds the link lasts; default share_default_hours"),
    ] = None
    passcode: Annotated[Text | None, Field(min_length=6, max_length=128)] = Field(
        default=None, description="the recipient must type it (tell them another way than the link)"
    )
    max_downloads: Annotated[int | None, Field(ge=1, le=1000)] = Field(
        default=None, description="whole-series downloads allowed; such a link serves no single files"
    )


class ShareOut(BaseModel):
    id: int
    SeriesKey: str
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


def _described(request: Request, items: list[Share]) -> list[dict[str, Any]]:
    """Each share with the series it is for, from the index (blank where the series has gone)."""
    sh = sharing(request)
    now = sh.shares.clock()
    out = [s.public(now) for s in items]
    try:
        with index_reader(sh.settings.db) as conn:
            found = {k: store.get_series(conn, k) for k in {s.SeriesKey for s in items}}
    except PacsIndexError:  # no index, or it cannot be read: the links are still worth showing
        found = {}
    for row in out:
        series = found.get(row["SeriesKey"]) or {}
        row.update({k: series.get(k) for k in _SERIES_FIELDS})
    return out


def _own(session: Session, share: Share) -> None:
    if not session.user.is_admin and share.created_by.lower() != session.user.name.lower():
        raise Forbidden("only the staff member who made this link, or an admin, may see or change it")


def _create(body: NewShareIn, request: Request, session: Session) -> dict[str, Any]:
    sh, st = sharing(request), state(request)
    with index_reader(sh.settings.db) as conn:
        series = store.get_series(conn, body.SeriesKey.lower())
    if series is None:
        raise NotFound("no series with that SeriesKey (the index may have changed: search again)")
    made = sh.shares.create(
        body.SeriesKey,
        session.user.name,
        expires_in_s=body.expires_in,
        passcode=body.passcode,
        max_downloads=body.max_downloads,
    )
    base = sh.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    st.audit.record(
        audit.SHARE_CREATE,
        session.user.name,
        client_address(request),
        share_id=made.share.id,
        SeriesKey=series["SeriesKey"],
        PatientName=series["PatientName"],
        PatientID=series["PatientID"],
        StudyDate=series["StudyDate"],
        Modality=series["Modality"],
        expires_at=made.share.public(made.share.created_at)["expires_at"],
        passcode=made.share.has_passcode,
        max_downloads=made.share.max_downloads,
    )
    out = _described(request, [made.share])[0]
    return {**out, "token": made.token, "url": f"{base}/share/{made.token}"}


CREATE_DOC = (
    "Make a link to one series. The answer holds the token and the URL this once; only the token's hash "
    "is kept. `expires_in` is in seconds (default share_default_hours, at most share_max_hours)."
)


@staff.post(
    "/api/shares",
    status_code=201,
    response_model=CreatedShare,
    responses={400: {"model": Problem}, 404: {"model": Problem}},
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
