"""DICOMweb routes under `/dicom-web`: QIDO-RS searches and WADO-RS retrievals (instances, series, studies,
their metadata, frames and bulk data) over the index, for PACS and viewers (Orthanc, OHIF, Weasis), plus
WADO-URI for one instance, and CORS for `/dicom-web` when `cors_origins` is set. The domain is in
`pacsindex.dicomweb` (query, dicomjson, retrieve, accept, part10, frames, bulkdata); this module only
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from pacsindex.accounts import audit
from pacsindex.accounts.apitokens import ApiTokens, FailureLimit
from pacsindex.config.settings import Settings
from pacsindex.dicomweb import query as dicomweb
from pacsindex.dicomweb.accept import Wanted, check_syntaxes
from pacsindex.dicomweb.bulkdata import BulkBody, open_bulk
from pacsindex.dicomweb.dicomjson import INSTANCE, SERIES, STUDY
from pacsindex.dicomweb.frames import open_frames, parse_frame_list
from pacsindex.dicomweb.retrieve import (
    DICOM,
    InstanceFile,
    Multipart,
    Single,
    check_json_accept,
    find,
    instance_wanted,
    metadata,
)
from pacsindex.dicomweb.streams import RetrievalLimiter, RetrievalSlot
from pacsindex.errors import AuthError, InvalidQuery, NotAcceptable, PacsIndexError, TokenRejected
from pacsindex.index.clock import Clock
from pacsindex.sources.readers import Readers
from pacsindex.web import tokens, viewing
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
    if settings.cors_origins:
        app.add_middleware(DicomWebCors, origins=settings.cors_origins)


def api_tokens(request: Request) -> ApiTokens:
    return tokens.api_tokens(request)


class _Limited(StreamingResponse):
    """A retrieval holding one of the `dicomweb_max_streams` places until it has been sent, failed or
    the client hung up; the body's files are closed then too."""

    def __init__(
        self,
        body: Iterator[bytes],
        slot: RetrievalSlot,
        media_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(body, media_type=media_type, headers=headers or NO_STORE)
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
            why = f" ({cause.__cause__})" if cause.__cause__ is not None else ""  # e.g. the NAS has gone
            log.warning("a DICOMweb retrieval stopped: %s%s", cause, why)
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


def take_slot(request: Request) -> RetrievalSlot:
    """One of the `dicomweb_max_streams` places, taken before any file is opened (Busy, 429, when none is
    free); give it to `_Limited`, or release it if no answer is sent."""
    limiter: RetrievalLimiter = request.app.state.dicomweb_streams
    return limiter.acquire()


@contextmanager
def opening(request: Request) -> Iterator[RetrievalSlot]:
    """`take_slot` around opening what a retrieval sends: the place is freed if opening fails (no answer
    goes out), else the block hands it to `_Limited`."""
    slot = take_slot(request)
    try:
        yield slot
    except BaseException:
        slot.release()
        raise


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
    wanted = instance_wanted(request.headers.get("accept"), single=sop is not None)
    settings = state(request).settings
    with index_reader(settings.db) as conn:
        target = find(conn, study, series, sop)
    readers = Readers(settings=settings)
    what = INSTANCE if sop is not None else SERIES if series is not None else STUDY
    with opening(request) as slot:
        if wanted.kind == "single":
            single = Single(target.files[0], readers)
            single.check(wanted)
            _audit_retrieval(request, who, what, study, series, target.PatientID)
            return _single_response(single, slot)
        # What the index knows already refuses early, before every file is opened; raw datasets are checked
        # once their encoding is seen.
        check_syntaxes(wanted, [f.TransferSyntaxUID for f in target.files if f.TransferSyntaxUID])
        multipart = Multipart(target.files, readers)
        multipart.check(wanted)
    _audit_retrieval(request, who, what, study, series, target.PatientID, len(target.files))
    headers = dict(NO_STORE)
    if multipart.warning:
        headers["Warning"] = multipart.warning
    return _Limited(iter(multipart), slot, multipart.content_type, headers)


def _single_response(single: Single, slot: RetrievalSlot) -> Response:
    headers = {**NO_STORE, "Content-Length": str(single.length)}
    return _Limited(iter(single), slot, DICOM, headers)


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
    with opening(request) as slot:
        _audit_retrieval(request, who, what, study, series, target.PatientID, len(target.files))
        body = metadata(target.files, Readers(settings=settings), base_url(request))
        return _Limited(body, slot, media)


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
    transferSyntax: Annotated[str | None, Query(max_length=64)] = None,  # noqa: N803
) -> Response:
    """WADO-URI: one instance as application/dicom (what OHIF's `wadouri` image loader asks for)."""
    if requestType != "WADO":
        raise InvalidQuery("requestType must be WADO")
    if contentType.split(";")[0].strip() not in (DICOM, "*/*", "application/*"):
        raise InvalidQuery("pacsindex sends instances as application/dicom only (no rendered images)")
    settings = state(request).settings
    with index_reader(settings.db) as conn:
        target = find(conn, studyUID, seriesUID, objectUID)
    with opening(request) as slot:
        single = Single(target.files[0], Readers(settings=settings))
        if transferSyntax:
            single.check(Wanted("single", frozenset({transferSyntax})))
    _audit_retrieval(request, who, INSTANCE, studyUID, seriesUID, target.PatientID)
    return _single_response(single, slot)


# -- frames, bulk data and CORS (for viewers: OHIF's wadors loader, Weasis) ---------------------------

FRAMES = {
    "description": "as stored: multipart/related; type=application/octet-stream for native pixels, "
    "image/jpeg, image/jls, image/jp2, image/dicom-rle ... for compressed ones",
    "content": {"multipart/related": {}},
}


def _one_instance(
    request: Request, who: Caller, study: str, series: str, sop: str, what: str
) -> InstanceFile:
    with index_reader(state(request).settings.db) as conn:
        target = find(conn, study, series, sop)
    _audit_retrieval(request, who, what, study, series, target.PatientID)
    return target.files[0]


@router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{frames}", responses={200: FRAMES})
def retrieve_frames(
    study: str, series: str, sop: str, frames: str, request: Request, who: Caller_
) -> Response:
    """WADO-RS: frames of one instance ("1" or "1,3,5"), in the transfer syntax they are stored in; 406 for
    an Accept header that names another (pacsindex does not transcode)."""
    numbers = parse_frame_list(frames)
    f = _one_instance(request, who, study, series, sop, INSTANCE)
    readers = Readers(settings=state(request).settings)
    with opening(request) as slot:  # a viewer asks for every frame of a series at once: the same limit
        body = open_frames(f.path, readers, numbers, request.headers.get("accept"), f"instance {sop}")
    return _Limited(iter(body), slot, body.content_type)


@router.get("/studies/{study}/series/{series}/instances/{sop}/bulkdata/{path:path}", responses={200: FRAMES})
def retrieve_bulkdata(
    study: str, series: str, sop: str, path: str, request: Request, who: Caller_
) -> Response:
    """WADO-RS: a bulk data value that an instance's metadata names by BulkDataURI (the pixel data, or a
    large binary value at `tag` or `tag/item/tag`)."""
    f = _one_instance(request, who, study, series, sop, INSTANCE)
    readers = Readers(settings=state(request).settings)
    with opening(request) as slot:
        body = open_bulk(f.path, readers, path, request.headers.get("accept"), f"instance {sop}")
    headers = dict(NO_STORE)
    if isinstance(body, BulkBody):
        headers["Content-Length"] = str(body.length)
    return _Limited(iter(body), slot, body.content_type, headers)


class DicomWebCors:
    """CORS for `/dicom-web` only, for a viewer served from another origin (`cors_origins`): preflight
    answered, the Authorization header allowed (the viewer sends its API token), Warning readable. Other
    paths never get CORS headers: the staff pages and API stay same-origin."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["GET", "HEAD", "OPTIONS"],
            allow_headers=["Authorization", "Accept", "Content-Type", "Range", "Cache-Control"],
            expose_headers=["Warning", "Content-Length", "Content-Type"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == PREFIX or path.startswith(PREFIX + "/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


# -- WADO-RS rendered resources and thumbnails (issue 16, pacsindex.viewer) ------------------------------
# PS3.18 10.4.1.1.3 and 10.4.1.1.4: an instance or one frame drawn as image/jpeg (the default) or image/png,
# with `window` (center,width[,function]), `viewport` (vw,vh: the picture fits in it) and `quality`. A study
# or series renders (and thumbnails) its middle instance. Drawn by the same renderer as the viewer: a file
# that cannot be decoded gives a placeholder image and an X-Render-Problem header, never an error status.

_RENDERED = (JPEG_MEDIA := "image/jpeg", PNG_MEDIA := "image/png")
THUMBNAIL_SIZE = 128


def _rendered_media(request: Request) -> str:
    asked = request.query_params.get("accept") or request.headers.get("accept") or "*/*"
    for item in asked.split(","):
        kind = item.split(";")[0].strip().lower()
        if kind in _RENDERED:
            return kind
        if kind in ("image/*", "*/*"):
            return JPEG_MEDIA
    raise NotAcceptable("rendered images are sent as image/jpeg or image/png")


def _window(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    parts = value.split(",")
    try:
        center, width = float(parts[0]), float(parts[1])
    except (IndexError, ValueError) as exc:
        raise InvalidQuery("window is center,width[,function], e.g. window=40,400,linear") from exc
    if width <= 0 or len(parts) > 3:
        raise InvalidQuery("window is center,width[,function] with a width above 0")
    return center, width


def _viewport(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = value.split(",")
    try:
        width, height = int(parts[0]), int(parts[1])
    except (IndexError, ValueError) as exc:
        raise InvalidQuery("viewport is vw,vh in pixels, e.g. viewport=512,512") from exc
    if not (1 <= width <= 4096 and 1 <= height <= 4096):
        raise InvalidQuery("viewport sizes are 1 to 4096 pixels")
    return width, height


def _frame(frames: str | None) -> int:
    if frames is None:
        return 1
    if not frames.isdigit() or not 1 <= int(frames) <= 100_000:
        raise InvalidQuery("ask for one frame at a time, numbered from 1")
    return int(frames)


async def _rendered(
    request: Request,
    who: Caller,
    study: str,
    series: str | None,
    sop: str | None,
    frames: str | None = None,
    thumbnail: bool = False,
) -> Response:
    media = _rendered_media(request)
    params = request.query_params
    quality = params.get("quality", "90")
    if not quality.isdigit() or not 1 <= int(quality) <= 100:
        raise InvalidQuery("quality is 1 to 100")
    viewport = _viewport(params.get("viewport"))
    settings = state(request).settings
    with index_reader(settings.db) as conn:
        target = find(conn, study, series, sop)
    chosen = target.files[len(target.files) // 2] if sop is None else target.files[0]
    wanted = viewing.render_request(
        frame=_frame(frames),
        size=THUMBNAIL_SIZE if thumbnail and viewport is None else None,
        fmt=media,
        quality=int(quality),
        viewport=viewport,
    )
    window = _window(params.get("window"))
    if window is not None and not thumbnail:
        wanted = viewing.render_request(
            wanted.frame, wanted.size, window[0], window[1], media, int(quality), viewport
        )
    what = "thumbnail" if thumbnail else "rendered"
    _audit_retrieval(
        request,
        who,
        f"{what} {INSTANCE if sop else SERIES if series else STUDY}",
        study,
        series,
        target.PatientID,
    )
    rendered = await viewing.viewing(request).renderer.render(chosen.path, wanted)
    return viewing.image_response(rendered, NO_STORE)


RENDERED = {"description": "the image drawn as image/jpeg or image/png", "content": {"image/jpeg": {}}}


@router.get("/studies/{study}/rendered", responses={200: RENDERED})
async def study_rendered(study: str, request: Request, who: Caller_) -> Response:
    """WADO-RS: the study's middle instance (of its first series), drawn."""
    return await _rendered(request, who, study, None, None)


@router.get("/studies/{study}/series/{series}/rendered", responses={200: RENDERED})
async def series_rendered(study: str, series: str, request: Request, who: Caller_) -> Response:
    """WADO-RS: the series' middle instance, drawn."""
    return await _rendered(request, who, study, series, None)


@router.get("/studies/{study}/series/{series}/instances/{sop}/rendered", responses={200: RENDERED})
async def instance_rendered(study: str, series: str, sop: str, request: Request, who: Caller_) -> Response:
    """WADO-RS: one instance drawn (its first frame), with window, viewport and quality."""
    return await _rendered(request, who, study, series, sop)


FRAME = "/studies/{study}/series/{series}/instances/{sop}/frames/{frames}"


@router.get(FRAME + "/rendered", responses={200: RENDERED})
async def frame_rendered(
    study: str, series: str, sop: str, frames: str, request: Request, who: Caller_
) -> Response:
    """WADO-RS: one frame of an instance drawn."""
    return await _rendered(request, who, study, series, sop, frames)


@router.get("/studies/{study}/thumbnail", responses={200: RENDERED})
async def study_thumbnail(study: str, request: Request, who: Caller_) -> Response:
    """WADO-RS: a small picture of the study (its middle instance)."""
    return await _rendered(request, who, study, None, None, thumbnail=True)


@router.get("/studies/{study}/series/{series}/thumbnail", responses={200: RENDERED})
async def series_thumbnail(study: str, series: str, request: Request, who: Caller_) -> Response:
    """WADO-RS: a small picture of the series (its middle instance)."""
    return await _rendered(request, who, study, series, None, thumbnail=True)


@router.get("/studies/{study}/series/{series}/instances/{sop}/thumbnail", responses={200: RENDERED})
async def instance_thumbnail(study: str, series: str, sop: str, request: Request, who: Caller_) -> Response:
    """WADO-RS: a small picture of one instance."""
    return await _rendered(request, who, study, series, sop, thumbnail=True)


@router.get(FRAME + "/thumbnail", responses={200: RENDERED})
async def frame_thumbnail(
    study: str, series: str, sop: str, frames: str, request: Request, who: Caller_
) -> Response:
    """WADO-RS: a small picture of one frame."""
    return await _rendered(request, who, study, series, sop, frames, thumbnail=True)
