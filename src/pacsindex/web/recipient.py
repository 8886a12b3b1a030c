"""The recipient's side of a share link, open without signing in:

- `GET /share/{token}`: what the link holds (practice, who shared it, the "for" note, each series'
  modality, date and file count; never a patient name), a passcode form when the link has one, and the
  Download button.
- `GET /share/{token}/download`: only the button again, so opening the address, or an e-mail scanner
  fetching every link in a message, uses none of a limited link's downloads.
- `POST /share/{token}/download`: the button. Reserves one download and redirects to
  `/share/{token}/zip/{ticket}`, where the zip is sent (GET, HEAD, and Range, so a broken download resumes
  where it stopped) as often as the browser asks, without using another download.
- `GET /share/{token}/files` (the files, each with a URL under this link) and `/share/{token}/files/{n}`.

Only the token, the passcode (POSTed in a form, never in a URL), a grant cookie and a ticket come in; the
files sent are always found from the series bound to the share (`share_series_keys`), so nothing in the
URL can name a path. Every use goes to the share's access log and to the audit log, with the outcome it
really had (a page for a share whose images left the index is logged not_found, not ok). Answers are
HTML pages a person can act on (404 unknown link, 410 expired/withdrawn/used up, 429 with Retry-After when
locked or busy), never cached.

Streams hold one of `share_max_streams` places (and of `share_max_streams_per_link` for the link and
`share_max_streams_per_client` for the client address); a token is checked before a place is asked for,
so made-up links never take one, and a client that reads nothing for `share_stall_seconds` loses its
place.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from pacsindex.accounts import audit
from pacsindex.config.settings import Settings
from pacsindex.errors import (
    CsrfRejected,
    NotFound,
    PacsIndexError,
    PasscodeRequired,
    ShareBusy,
    ShareError,
)
from pacsindex.share import service
from pacsindex.share.bundle import PlanMap, ShareZip
from pacsindex.share.deid import Deidentifier
from pacsindex.share.download import member_names, stream_file
from pacsindex.share.limits import Slot, StreamLimiter
from pacsindex.share.links import Access, Kind, Shares
from pacsindex.sources.readers import CHUNK, ReaderFor, coalesce
from pacsindex.web.indexing import index_reader
from pacsindex.web.security import client_address, state
from pacsindex.web.sharepages import (
    NO_STORE,
    confirm_page,
    escape,
    files_page,
    landing_page,
    page,
    passcode_form,
    refusal_page,
)
from pacsindex.web.sharestream import ShareStream

log = logging.getLogger(__name__)

COOKIE = "pacsindex_share"
PLANS_KEPT = 8  # planned zips kept for resumed downloads (sizes, and de-identified headers: a few KB a file)

router = APIRouter(prefix="/share", tags=["share links (recipient)"], include_in_schema=False)


@dataclass
class Planned:
    """A download's planned zip and the CRCs found while sending it (so a resume reads less)."""

    zip: ShareZip
    crcs: dict[int, int] = field(default_factory=dict)


@dataclass
class Sharing:
    """What the share routes use; built by `install` and kept on app.state.sharing."""

    shares: Shares
    limiter: StreamLimiter
    settings: Settings
    reader_for: ReaderFor | None = None  # None: sources.reader_for (tests put a slow reader here)
    chunk: int = CHUNK  # bytes read, and sent, at a time
    stall_s: float | None = None  # None: settings.share_stall_seconds
    plans: OrderedDict[str, Planned] = field(default_factory=OrderedDict)
    plans_lock: threading.Lock = field(default_factory=threading.Lock)
    pool: ProcessPoolExecutor | None = None  # de-identification workers, started on first use

    def plan_map(self) -> PlanMap:
        """Runs de-identification planning in worker processes (CPU-bound header work: not threads)."""
        with self.plans_lock:
            if self.pool is None:
                self.pool = ProcessPoolExecutor(
                    max_workers=max(1, min(4, os.cpu_count() or 1)),
                    mp_context=multiprocessing.get_context("spawn"),  # never fork a threaded server
                )
            pool = self.pool
        return lambda work, paths: pool.map(work, paths, chunksize=16)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def sharing(request: Request) -> Sharing:
    found: Sharing = request.app.state.sharing
    return found


# -- using a link --------------------------------------------------------------------------------------


def _who(request: Request) -> dict[str, Any]:
    return {"client": client_address(request), "user_agent": request.headers.get("user-agent")}


def _audit(
    request: Request, share_id: int | None, kind: str, outcome: str | None, log_id: int | None, **more: Any
) -> None:
    state(request).audit.record(
        audit.SHARE_ACCESS,
        None,
        client_address(request),
        share_id=share_id,
        kind=kind,
        outcome=outcome,
        access=log_id,
        **more,
    )


def use(request: Request, token: str, kind: Kind, passcode: str | None = None) -> Access:
    """One use of the link, or the ShareError that says why not (logged and audited). An allowed use is
    audited by `served` or `failed` once it is known how it went."""
    sh = sharing(request)
    try:
        return sh.shares.access(
            token, kind=kind, passcode=passcode, grant=request.cookies.get(COOKIE), **_who(request)
        )
    except ShareError as exc:
        _audit(request, exc.share_id, kind, exc.outcome, exc.log_id)
        raise


def served(request: Request, got: Access, kind: Kind) -> None:
    _audit(request, got.share.id, kind, "ok", got.log_id)


def failed(request: Request, got: Access, kind: Kind, exc: PacsIndexError) -> None:
    """A use that was let through but could not be served (images gone, no place free): the log row
    written as ok is corrected to what happened, and nothing was sent."""
    sh = sharing(request)
    outcome = (
        "not_found" if isinstance(exc, NotFound) else "busy" if isinstance(exc, ShareBusy) else "incomplete"
    )
    if kind == "download":
        sh.shares.unreserve(got)
    sh.shares.finish(got.log_id, 0, complete=False, outcome=outcome)
    _audit(request, got.share.id, kind, outcome, got.log_id, reason=type(exc).__name__)


def take_slot(request: Request, got: Access) -> Slot:
    """A place for this stream (ShareBusy when there is none for everyone, the link or the client)."""
    return sharing(request).limiter.acquire(got.share.id, client_address(request))


def parts_of(request: Request, got: Access) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The share's series and their files, from the index."""
    with index_reader(sharing(request).settings.db) as conn:
        return service.share_parts(conn, got.share)


def same_origin_form(request: Request) -> None:
    """Refuse a form posted from another site. Pages here send no Referer (Referrer-Policy: no-referrer),
    so a browser's form POST carries `Origin: null`; `Sec-Fetch-Site` says where it came from instead."""
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        raise CsrfRejected("a form from another site was refused")
    origin, host = request.headers.get("origin"), request.headers.get("host")
    if origin and origin != "null" and host and urlsplit(origin).netloc.lower() != host.lower():
        raise CsrfRejected("a form from another site was refused")


def with_grant(response: Response, request: Request, token: str, got: Access) -> Response:
    if got.grant:
        sh = sharing(request)
        response.set_cookie(
            COOKIE,
            got.grant,
            max_age=int(sh.shares.grant_s),
            path=f"/share/{token}",
            httponly=True,
            samesite="strict",
            secure=sh.settings.secure_cookies,
        )
    return response


def stream(
    request: Request,
    got: Access,
    slot: Slot,
    kind: Kind,
    chunks: Iterator[bytes],
    headers: dict[str, str],
    media_type: str,
    status_code: int = 200,
) -> ShareStream:
    sh = sharing(request)
    audit_log, client = state(request).audit, client_address(request)

    def finished(sent: int, complete: bool, stalled: bool) -> None:
        outcome = "stalled" if stalled else "ok" if complete else "incomplete"
        try:
            slot.release()
            sh.shares.finish(got.log_id, sent, complete=complete, outcome=outcome)
        finally:
            audit_log.record(
                audit.SHARE_ACCESS,
                None,
                client,
                share_id=got.share.id,
                kind=kind,
                outcome=outcome,
                access=got.log_id,
                bytes_sent=sent,
            )

    stall = sh.stall_s if sh.stall_s is not None else sh.settings.share_stall_seconds
    return ShareStream(
        chunks,
        finished,
        {**NO_STORE, **headers},
        media_type,
        sh.chunk,
        stall_s=stall,
        status_code=status_code,
        release=slot.release,
    )


# -- routes --------------------------------------------------------------------------------------------


@router.get("/{token}", response_class=HTMLResponse)
def landing(request: Request, token: str) -> Response:
    """What the link holds (no patient name), a passcode form if needed, and the Download button."""
    sh = sharing(request)
    try:
        got = use(request, token, "page")
    except PasscodeRequired:
        return page("Shared images", passcode_form(token), 200)
    except PacsIndexError as exc:
        return refusal_page(exc, token)
    try:
        series = [s for s, _ in parts_of(request, got)]
    except PacsIndexError as exc:
        failed(request, got, "page", exc)
        return refusal_page(exc, token)
    served(request, got, "page")
    practice = service.practice(sh.settings.data_path)
    return with_grant(landing_page(token, got.share, series, sh.settings.tz, practice), request, token, got)


@router.post("/{token}", response_class=HTMLResponse)
def give_passcode(
    request: Request, token: str, passcode: Annotated[str, Form(max_length=1024)] = ""
) -> Response:
    """The passcode form: on success a grant cookie for this link, then back to the landing page."""
    try:
        same_origin_form(request)
        got = use(request, token, "passcode", passcode=passcode or None)
    except PacsIndexError as exc:
        return refusal_page(exc, token)
    served(request, got, "passcode")
    response = Response(status_code=303, headers={**NO_STORE, "Location": f"/share/{token}"})
    return with_grant(response, request, token, got)


@router.get("/{token}/download", response_class=HTMLResponse)
def download_page(request: Request, token: str) -> Response:
    """The Download button only: a GET (a person opening the address, or a scanner) uses nothing up."""
    try:
        got = use(request, token, "page")
    except PasscodeRequired:
        return page("Shared images", passcode_form(token), 200)
    except PacsIndexError as exc:
        return refusal_page(exc, token)
    served(request, got, "page")
    return with_grant(confirm_page(token), request, token, got)


@router.post("/{token}/download")
def press_download(
    request: Request, token: str, passcode: Annotated[str, Form(max_length=1024)] = ""
) -> Response:
    """Download pressed: one download reserved, then the zip's address (a ticket) to fetch and resume."""
    sh = sharing(request)
    try:
        same_origin_form(request)
        got = use(request, token, "download", passcode=passcode or None)
    except PacsIndexError as exc:
        return refusal_page(exc, token)
    try:
        parts_of(request, got)
    except PacsIndexError as exc:
        failed(request, got, "download", exc)
        return refusal_page(exc, token)
    served(request, got, "download")
    ticket = sh.shares.ticket(got)
    response = Response(status_code=303, headers={**NO_STORE, "Location": f"/share/{token}/zip/{ticket}"})
    return with_grant(response, request, token, got)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """[start, stop) asked for by a Range header; None for the whole (no header, several ranges, or one
    this does not understand); "unsatisfiable" for a range outside the zip."""
    match = _RANGE.match((header or "").replace(" ", ""))
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        start, stop = max(0, size - int(last)), size
    else:
        start = int(first)
        stop = size if last == "" else min(size, int(last) + 1)
    if start >= size or stop <= start:
        return "unsatisfiable"
    return start, stop


def _planned(request: Request, ticket: str, got: Access) -> Planned:
    sh = sharing(request)
    with sh.plans_lock:
        found = sh.plans.get(ticket)
        if found is not None:
            sh.plans.move_to_end(ticket)
            return found
    parts = parts_of(request, got)
    share = got.share
    practice = service.practice(sh.settings.data_path)
    planned = Planned(
        ShareZip(
            parts,
            made_at=share.created_at,
            tz=sh.settings.tz,
            practice=practice["name"],
            deidentifier=Deidentifier(share.deid_seed) if share.deidentified and share.deid_seed else None,
            reader_for=sh.reader_for,
            settings=sh.settings,
            chunk=sh.chunk,
            plan_map=sh.plan_map() if share.deidentified else None,
        )
    )
    with sh.plans_lock:
        sh.plans[ticket] = planned
        while len(sh.plans) > PLANS_KEPT:
            sh.plans.popitem(last=False)
    return planned


@router.api_route("/{token}/zip/{ticket}", methods=["GET", "HEAD"])
def zip_download(request: Request, token: str, ticket: str) -> Response:
    """The zip of a pressed Download: whole, a byte Range of it (206), or only its headers (HEAD)."""
    sh = sharing(request)
    try:
        got = sh.shares.redeem(token, ticket, **_who(request))
    except ShareError as exc:
        _audit(request, exc.share_id, "zip", exc.outcome, exc.log_id)
        return refusal_page(exc, token)
    slot: Slot | None = None
    try:
        if request.method != "HEAD":
            slot = take_slot(request, got)
        planned = _planned(request, ticket, got)
    except PacsIndexError as exc:
        if slot is not None:
            slot.release()
        failed(request, got, "zip", exc)
        return refusal_page(exc, token)
    except BaseException:
        if slot is not None:
            slot.release()
        raise
    z = planned.zip
    etag = '"' + hashlib.sha256(f"{ticket}:{z.size}".encode()).hexdigest()[:32] + '"'
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Content-Disposition": f'attachment; filename="{z.filename}"',
    }
    wanted = byte_range(request.headers.get("range"), z.size)
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range != etag:
        wanted = None
    if wanted == "unsatisfiable":
        if slot is not None:
            slot.release()
        sh.shares.finish(got.log_id, 0, complete=False, outcome="not_found")
        _audit(request, got.share.id, "zip", "not_found", got.log_id)
        return Response(
            status_code=416, headers={**NO_STORE, **headers, "Content-Range": f"bytes */{z.size}"}
        )
    start, stop = wanted if isinstance(wanted, tuple) else (0, z.size)
    headers["Content-Length"] = str(stop - start)
    status = 200
    if isinstance(wanted, tuple):
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{z.size}"
    if request.method == "HEAD" or slot is None:
        sh.shares.finish(got.log_id, 0, complete=True)
        _audit(request, got.share.id, "zip", "ok", got.log_id, head=True)
        return Response(status_code=status, headers={**NO_STORE, **headers}, media_type="application/zip")
    chunks = coalesce(z.chunks(start, stop, planned.crcs), sh.chunk)
    return stream(request, got, slot, "zip", chunks, headers, "application/zip", status)


@router.get("/{token}/files")
def file_list(request: Request, token: str) -> Response:
    """The files of the shared series, each with a URL that works under this link only. JSON when asked."""
    wants_json = "application/json" in request.headers.get("accept", "")

    def refused(exc: PacsIndexError) -> Response:
        if wants_json:
            status = refusal_page(exc).status_code
            return JSONResponse({"detail": str(exc)}, status_code=status, headers=NO_STORE)
        return refusal_page(exc, token)

    try:
        got = use(request, token, "files")
    except PacsIndexError as exc:
        return refused(exc)
    try:
        files = [f for _, series_files in parts_of(request, got) for f in series_files]
    except PacsIndexError as exc:
        failed(request, got, "files", exc)
        return refused(exc)
    served(request, got, "files")
    single = got.share.max_downloads is None and not got.share.deidentified
    rows = [
        {
            "n": n,
            "name": name,
            "size": f["size"],
            "InstanceNumber": f["InstanceNumber"],
            "SOPInstanceUID": None if got.share.deidentified else f["SOPInstanceUID"],
            "url": f"/share/{token}/files/{n}" if single else None,
        }
        for n, (name, f) in enumerate(zip(member_names(len(files)), files, strict=True), start=1)
    ]
    if wants_json:
        return with_grant(JSONResponse({"files": rows}, headers=NO_STORE), request, token, got)
    return with_grant(files_page(token, rows, single), request, token, got)


@router.get("/{token}/files/{n}")
def one_file(request: Request, token: str, n: str) -> Response:
    """One file of the shared series by its number in the list (1 ... file count)."""
    sh = sharing(request)
    try:
        got = use(request, token, "file")
    except PacsIndexError as exc:
        return refusal_page(exc, token)
    slot: Slot | None = None
    try:
        slot = take_slot(request, got)
        files = [f for _, series_files in parts_of(request, got) for f in series_files]
        if not (n.isascii() and n.isdigit() and len(n) <= 7 and 1 <= int(n) <= len(files)):
            raise NotFound(f"this link has files 1 to {len(files)}")
        name = member_names(len(files))[int(n) - 1]
        size, chunks = stream_file(
            files[int(n) - 1]["path"], name, reader_for=sh.reader_for, settings=sh.settings, chunk=sh.chunk
        )
    except PacsIndexError as exc:
        if slot is not None:
            slot.release()
        failed(request, got, "file", exc)
        if isinstance(exc, NotFound):
            return page("File not found", f"<p class='notice error' role='alert'>{escape(exc)}.</p>", 404)
        return refusal_page(exc, token)
    except BaseException:
        if slot is not None:
            slot.release()
        raise
    headers = {"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{name}"'}
    return stream(request, got, slot, "file", chunks, headers, "application/dicom")
