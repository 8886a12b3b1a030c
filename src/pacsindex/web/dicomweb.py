"""DICOMweb routes under `/dicom-web`: QIDO-RS searches and WADO-RS retrievals (instances, series, studies
and their metadata) over the index, for PACS and viewers (Orthanc, OHIF, Weasis), plus WADO-URI for one
instance. The domain is in `pacsindex.dicomweb.query`, `dicomweb_json` and `dicomweb_retrieve`; this module
only
translates HTTP.

Who may ask: a machine client with an API token that an admin made (`Authorization: Bearer TOKEN`, or HTTP
Basic with any user name and the token as the password, which is what a PACS's "remote DICOMweb server"
setting can send), or a signed-in staff browser (the session cookie; these routes only read). Anything else
gets 401 with a `WWW-Authenticate` challenge. Every search and every retrieval goes to the audit log as
`dicomweb_query` / `dicomweb_retrieve`, with `token:NAME` or the staff user as who; instance retrievals are
recorded per series (a viewer fetches a series one instance at a time), so one entry stands for them.

`install(app, settings, clock=...)` keeps the API tokens on app.state and adds these routes and the
admin's `/api/tokens` routes (`web.tokens`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from pacsindex.accounts import audit
from pacsindex.accounts.apitokens import ApiTokens, Clock, FailureLimit
from pacsindex.config.settings import Settings
from pacsindex.dicomweb import query as dicomweb
from pacsindex.dicomweb.dicomjson import INSTANCE, SERIES, STUDY
from pacsindex.dicomweb.retrieve import (
    DICOM,
    Multipart,
    check_json_accept,
    find,
    metadata,
    open_single,
    retrieve_type,
)
from pacsindex.dicomweb.streams import RetrievalLimiter, RetrievalSlot
from pacsindex.errors import AuthError, InvalidQuery, PacsIndexError, TokenRejected
from pacsindex.sources.readers import Readers
from pacsindex.web import tokens
from pacsindex.web.indexing import index_reader
from pacsindex.web.models import Problem
from pacsindex.web.security import COOKIE, client_address, signed_in, state

log = logging.getLogger(__name__)

PREFIX = "/dicom-web"
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, as the audit log names them: `token:NAME` or a staff user's name."""

    name: str
    via_token: bool


def _presented_token(header: str) -> str:
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise TokenRejected("the Basic credentials are not valid base64 of user:token") from exc
        return decoded.partition(":")[2]
    raise TokenRejected("send the API token as 'Authorization: Bearer TOKEN' or as the HTTP Basic password")


def caller(request: Request) -> Caller:
    """The token or staff session behind a DICOMweb request; TokenRejected (401 + challenge) if neither."""
    header = request.headers.get("authorization")
    if header:
        tokens = api_tokens(request)
        with tokens.failures.attempt(client_address(request)):  # a malformed header is a failed try too
            token = tokens.authenticate(_presented_token(header))
        return Caller(token.audit_name, True)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        try:
            session = state(request).accounts.session(cookie)
        except AuthError as exc:
            raise TokenRejected(str(exc)) from exc
        return Caller(session.user.name, False)
    raise TokenRejected("sign in: send an API token (an admin makes one) as a Bearer token or Basic password")


Caller_ = Annotated[Caller, Depends(caller)]

router = APIRouter(
    prefix=PREFIX,
    tags=["dicomweb"],
    responses={
        400: {"model": Problem},
        401: {"model": Problem, "description": "no, a wrong or a revoked API token"},
        404: {"model": Problem},
        406: {"model": Problem},
    },
)


def install(app: FastAPI, settings: Settings, *, clock: Clock) -> None:
    failures = FailureLimit(
        settings.dicomweb_token_failures_per_address, settings.signin_lockout_minutes * 60, clock=clock
    )
    app.state.apitokens = ApiTokens(settings.db, clock=clock, failures=failures)
    app.state.dicomweb_streams = RetrievalLimiter(settings.dicomweb_max_streams)
    app.include_router(router)
    app.include_router(tokens.router, prefix="/api", dependencies=[Depends(signed_in)])


def api_tokens(request: Request) -> ApiTokens:
    return tokens.api_tokens(request)


class _Limited(StreamingResponse):
    """A retrieval holding one of the `dicomweb_max_streams` places until it has been sent, failed or
    the client hung up; the body's files are closed then too."""

    def __init__(self, body: Iterator[bytes], slot: RetrievalSlot, media_type: str) -> None:
        super().__init__(body, media_type=media_type, headers=NO_STORE)
        self._body = body
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:
            cause = _pacsindex_error(exc)
            if cause is None:
                raise
            # The status line has gone out: the answer just stops short, and the log says why in one line.
            log.warning("a DICOMweb retrieval stopped: %s", cause)
        finally:
            self._slot.release()
            close = getattr(self._body, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # closing must never keep the slot; a generator mid-read may refuse
                    pass


def _pacsindex_error(exc: BaseException) -> PacsIndexError | None:
    """The PacsIndexError behind `exc`, also inside the exception group a task group raises."""
    if isinstance(exc, PacsIndexError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _pacsindex_error(inner)
        if found is not None:
            return found
    return None


def limited(request: Request, make: Callable[[], tuple[Iterator[bytes], str]]) -> Response:
    """The body `make()` opens, sent once a retrieval place is free (Busy, 429, when none is); the place
    is taken before any file is opened and held until the body is sent or abandoned."""
    limiter: RetrievalLimiter = request.app.state.dicomweb_streams
    slot = limiter.acquire()
    try:
        body, media_type = make()
    except BaseException:
        slot.release()
        raise
    return _Limited(body, slot, media_type)


def base_url(request: Request) -> str:
    """The DICOMweb root that RetrieveURL values start with: public_url when set, else as asked."""
    public = state(request).settings.public_url
    root = public.rstrip("/") if public else str(request.base_url).rstrip("/")
    return root + PREFIX


def _record(request: Request, who: Caller, action: str, **detail: Any) -> None:
    state(request).audit.record(
        action, who.name, client_address(request), **{k: v for k, v in detail.items() if v is not None}
    )


# -- QIDO-RS -----------------------------------------------------------------------------------------


def _search(
    request: Request, who: Caller, level: str, study: str | None = None, series: str | None = None
) -> Response:
    media = check_json_accept(request.headers.get("accept"))
    params = request.query_params.multi_items()
    query = dicomweb.parse_query(level, params, study_uid=study, series_uid=series)
    with index_reader(state(request).settings.db) as conn:
        result = dicomweb.search(conn, query, base_url(request))
    _record(request, who, audit.DICOMWEB_QUERY, **query.audit_detail(), results=len(result.items))
    headers = dict(NO_STORE)
    if result.warnings:
        headers["Warning"] = ", ".join(
            '299 pacsindex "' + w.replace('"', "'").encode("ascii", "replace").decode() + '"'
            for w in result.warnings
        )
    body = json.dumps(result.items, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, media_type=media, headers=headers)


QIDO = {"description": "matches in the DICOM JSON model (application/dicom+json)"}


@router.get("/studies", responses={200: QIDO})
def search_studies(request: Request, who: Caller_) -> Response:
    """QIDO-RS: studies matching PatientName (wildcards, any case), PatientID, StudyDate (ranges),
    AccessionNumber, ModalitiesInStudy, StudyInstanceUID ...; `limit`, `offset`, `includefield`."""
    return _search(request, who, STUDY)


@router.get("/series", responses={200: QIDO})
def search_all_series(request: Request, who: Caller_) -> Response:
    """QIDO-RS: series of any study, by study and series attributes."""
    return _search(request, who, SERIES)


@router.get("/studies/{study}/series", responses={200: QIDO})
def search_series(study: str, request: Request, who: Caller_) -> Response:
    """QIDO-RS: the series of one study (404 when the index has no such study)."""
    return _search(request, who, SERIES, study)


@router.get("/studies/{study}/instances", responses={200: QIDO})
def search_study_instances(study: str, request: Request, who: Caller_) -> Response:
    """QIDO-RS: the instances of one study."""
    return _search(request, who, INSTANCE, study)


@router.get("/studies/{study}/series/{series}/instances", responses={200: QIDO})
def search_instances(study: str, series: str, request: Request, who: Caller_) -> Response:
    """QIDO-RS: the instances of one series."""
    return _search(request, who, INSTANCE, study, series)


# -- WADO-RS -----------------------------------------------------------------------------------------


def _retrieve(
    request: Request, who: Caller, study: str, series: str | None = None, sop: str | None = None
) -> Response:
    kind = retrieve_type(request.headers.get("accept"), single=sop is not None)
    settings = state(request).settings
    with index_reader(settings.db) as conn:
        target = find(conn, study, series, sop)
    readers = Readers(settings=settings)

    def make() -> tuple[Iterator[bytes], str]:
        if kind == "single":
            return open_single(target.files[0], readers), DICOM
        multipart = Multipart(target.files, readers)
        return iter(multipart), multipart.content_type

    response = limited(request, make)
    what = INSTANCE if sop is not None else SERIES if series is not None else STUDY
    _audit_retrieval(request, who, what, study, series, target.PatientID, len(target.files))
    return response


def _audit_retrieval(
    request: Request,
    who: Caller,
    what: str,
    study: str,
    series: str | None,
    patient_id: str | None,
    files: int | None = None,
) -> None:
    # Per instance would be an entry per image; per series, repeats within the audit log's window are one.
    _record(
        request,
        who,
        audit.DICOMWEB_RETRIEVE,
        what=what,
        StudyInstanceUID=study,
        SeriesInstanceUID=series,
        PatientID=patient_id,
        files=None if what == INSTANCE else files,
    )


MULTIPART = {
    "description": 'the instances, as stored: multipart/related; type="application/dicom"',
    "content": {"multipart/related": {}},
}


@router.get("/studies/{study}", responses={200: MULTIPART})
def retrieve_study(study: str, request: Request, who: Caller_) -> Response:
    """WADO-RS: every instance of a study, streamed from the archive."""
    return _retrieve(request, who, study)


@router.get("/studies/{study}/series/{series}", responses={200: MULTIPART})
def retrieve_series(study: str, series: str, request: Request, who: Caller_) -> Response:
    """WADO-RS: every instance of a series, streamed from the archive."""
    return _retrieve(request, who, study, series)


@router.get("/studies/{study}/series/{series}/instances/{sop}", responses={200: MULTIPART})
def retrieve_instance(study: str, series: str, sop: str, request: Request, who: Caller_) -> Response:
    """WADO-RS: one instance (also as bare application/dicom when the Accept header asks for only that)."""
    return _retrieve(request, who, study, series, sop)


def _metadata(
    request: Request, who: Caller, study: str, series: str | None = None, sop: str | None = None
) -> Response:
    media = check_json_accept(request.headers.get("accept"))
    settings = state(request).settings
    with index_reader(settings.db) as conn:
        target = find(conn, study, series, sop)
    what = "instance metadata" if sop else "series metadata" if series else "study metadata"
    response = limited(request, lambda: (metadata(target.files, Readers(settings=settings)), media))
    _audit_retrieval(request, who, what, study, series, target.PatientID, len(target.files))
    return response


@router.get("/studies/{study}/metadata", responses={200: QIDO})
def study_metadata(study: str, request: Request, who: Caller_) -> Response:
    """WADO-RS: the header of every instance of a study, as DICOM JSON (no pixel data)."""
    return _metadata(request, who, study)


@router.get("/studies/{study}/series/{series}/metadata", responses={200: QIDO})
def series_metadata(study: str, series: str, request: Request, who: Caller_) -> Response:
    """WADO-RS: the header of every instance of a series, as DICOM JSON."""
    return _metadata(request, who, study, series)


@router.get("/studies/{study}/series/{series}/instances/{sop}/metadata", responses={200: QIDO})
def instance_metadata(study: str, series: str, sop: str, request: Request, who: Caller_) -> Response:
    """WADO-RS: one instance's header, as DICOM JSON."""
    return _metadata(request, who, study, series, sop)


# -- WADO-URI ----------------------------------------------------------------------------------------


@router.get("/wado", responses={200: {"content": {DICOM: {}}}})
def wado_uri(
    request: Request,
    who: Caller_,
    requestType: Annotated[str, Query(max_length=8)],  # noqa: N803  (WADO-URI's own parameter names)
    studyUID: Annotated[str, Query(max_length=64)],  # noqa: N803
    seriesUID: Annotated[str, Query(max_length=64)],  # noqa: N803
    objectUID: Annotated[str, Query(max_length=64)],  # noqa: N803
    contentType: Annotated[str, Query(max_length=64)] = DICOM,  # noqa: N803
) -> Response:
    """WADO-URI: one instance as application/dicom (what OHIF's `wadouri` image loader asks for)."""
    if requestType != "WADO":
        raise InvalidQuery("requestType must be WADO")
    if contentType.split(";")[0].strip() not in (DICOM, "*/*", "application/*"):
        raise InvalidQuery("pacsindex sends instances as application/dicom only (no rendered images)")
    settings = state(request).settings
    with index_reader(settings.db) as conn:
        target = find(conn, studyUID, seriesUID, objectUID)
    response = limited(request, lambda: (open_single(target.files[0], Readers(settings=settings)), DICOM))
    _audit_retrieval(request, who, INSTANCE, studyUID, seriesUID, target.PatientID)
    return response
