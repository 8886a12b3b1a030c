"""The recipient's side of a share link, open without signing in: `/share/{token}` (a landing page with
the series' modality, study date, file count and size, a passcode form when the link has one, and a
Download button), `/share/{token}/download` (the series as a zip built on the fly), `/share/{token}/files`
(the files, each with a URL that works only under this link) and `/share/{token}/files/{n}`.

Only the token, the passcode (POSTed in a form, never in a URL) and a grant cookie come in; the file sent
is always found from the share's SeriesKey in the index, so nothing in the URL can name a path. Every use
goes to the share's access log and to the audit log. Answers are HTML pages a person can act on (404 for
an unknown link, 410 for one that expired, was withdrawn or is used up, 429 with Retry-After when locked
or busy), never cached (`Cache-Control: no-store`). Downloads hold one of `share_max_streams` places.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

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
from pacsindex.index import store
from pacsindex.share.download import SeriesZip, Slot, StreamLimiter, member_names, stream_file
from pacsindex.share.links import Access, Kind, Shares
from pacsindex.sources.readers import CHUNK, ReaderFor
from pacsindex.web.indexing import index_reader
from pacsindex.web.security import client_address, state
from pacsindex.web.sharepages import (
    NO_STORE,
    escape,
    files_page,
    landing_page,
    page,
    passcode_form,
    refusal_page,
)

log = logging.getLogger(__name__)

COOKIE = "pacsindex_share"

router = APIRouter(prefix="/share", tags=["share links (recipient)"], include_in_schema=False)


@dataclass
class Sharing:
    """What the share routes use; built by `install` and kept on app.state.sharing."""

    shares: Shares
    limiter: StreamLimiter
    settings: Settings
    reader_for: ReaderFor | None = None  # None: sources.reader_for (tests put a slow reader here)
    chunk: int = CHUNK  # bytes read, and sent, at a time


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
    """One use of the link, or the ShareError that says why not; both logged and audited."""
    sh = sharing(request)
    try:
        got = sh.shares.access(
            token, kind=kind, passcode=passcode, grant=request.cookies.get(COOKIE), **_who(request)
        )
    except ShareError as exc:
        _audit(request, exc.share_id, kind, exc.outcome, exc.log_id)
        raise
    if kind not in ("download", "file"):  # those are audited when they end, with the bytes sent
        _audit(request, got.share.id, kind, "ok", got.log_id)
    return got


def take_slot(request: Request, token: str, kind: Kind) -> Slot:
    sh = sharing(request)
    try:
        return sh.limiter.acquire()
    except ShareBusy as exc:
        sh.shares.refuse(token, exc, "busy", kind=kind, **_who(request))
        _audit(request, exc.share_id, kind, "busy", exc.log_id)
        raise


def series_of(request: Request, got: Access) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The shared series and its files, in instance order, from the index."""
    with index_reader(sharing(request).settings.db) as conn:
        series = store.get_series(conn, got.share.SeriesKey)
        if series is None:
            raise NotFound("the shared series is no longer in the practice's archive index")
        files = list(store.series_files(conn, series.pop("series_id")))
    return series, files


def failed(request: Request, got: Access, kind: Kind, exc: PacsIndexError) -> None:
    """A use that was let through but could not be served (series or file gone): nothing was sent."""
    sh = sharing(request)
    outcome = "not_found" if isinstance(exc, NotFound) else "incomplete"
    if kind == "download":
        sh.shares.unreserve(got)
    sh.shares.finish(got.log_id, 0, complete=False, outcome=outcome)
    _audit(request, got.share.id, kind, outcome, got.log_id, reason=type(exc).__name__)


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


class ShareStream(StreamingResponse):
    """Sends `chunks` (read in worker threads, so the server keeps answering), then calls
    `on_close(bytes_sent, complete)` however the transfer ended: done, cut by the client, or stopped by a
    file that changed (then the connection is closed early, so the client sees a broken download rather
    than a wrong one)."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        on_close: Callable[[int, bool], None],
        headers: dict[str, str],
        media_type: str,
        batch: int = CHUNK,
    ) -> None:
        self._chunks = chunks
        self._on_close = on_close
        self._size = int(headers["Content-Length"]) if "Content-Length" in headers else None
        self._gone = False  # the client hung up: what is still "sent" goes nowhere
        self._batch = batch
        self._ahead: asyncio.Future[list[bytes]] | None = None
        super().__init__(self._pull(), headers=headers, media_type=media_type)

    def _take(self) -> list[bytes]:
        """The next pieces, about `batch` bytes of them (one trip to a worker thread for several)."""
        pieces, held = [], 0
        for piece in self._chunks:
            pieces.append(piece)
            held += len(piece)
            if held >= self._batch:
                break
        return pieces

    async def _pull(self) -> AsyncIterator[bytes]:
        # The next pieces are read (and CRC'd) in a worker thread while the ones before are being sent.
        loop = asyncio.get_running_loop()
        self._ahead = loop.run_in_executor(None, self._take)
        while True:
            # Shielded: a cancelled stream must not mark the read as done while its thread still runs
            # the generator, or closing the source below would race it.
            pieces = await asyncio.shield(self._ahead)
            if not pieces:
                self._ahead = None
                return
            self._ahead = loop.run_in_executor(None, self._take)
            for piece in pieces:
                yield piece

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The server drops what is sent after the client hung up, without a word; Starlette cancels the
        # stream only when its listener next runs. Note the hang-up at once, so the stream stops reading
        # the NAS and the access log counts only what went out before it.
        async def watched() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._gone = True
            return message

        await super().__call__(scope, watched, send)

    async def stream_response(self, send: Send) -> None:
        sent, complete = 0, False
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            async for chunk in self.body_iterator:
                if self._gone:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += len(chunk)
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                complete = True
        except PacsIndexError as exc:  # names the file inside the zip only, never an archive path
            log.warning("a share download stopped after %d bytes: %s", sent, exc)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    if self._ahead is not None:  # let the read in flight finish before closing the source
                        with contextlib.suppress(BaseException):
                            await self._ahead
                    close = getattr(self._chunks, "close", None)
                    if close is not None:
                        await anyio.to_thread.run_sync(close)
                except Exception:  # closing the files must never keep the slot and the log from below
                    log.warning("a share download's files could not be closed cleanly", exc_info=True)
                finally:
                    # A client that has read all Content-Length bytes may hang up before the stream has
                    # noticed it ended (the server then cancels it): that download is whole all the same.
                    whole = complete or (self._size is not None and sent >= self._size)
                    await anyio.to_thread.run_sync(self._on_close, sent, whole)


def stream(
    request: Request,
    got: Access,
    slot: Slot,
    kind: Kind,
    chunks: Iterator[bytes],
    size: int,
    filename: str,
    media_type: str,
) -> ShareStream:
    sh = sharing(request)
    audit_log, client = state(request).audit, client_address(request)

    def finished(sent: int, complete: bool) -> None:
        try:
            slot.release()
            sh.shares.finish(got.log_id, sent, complete=complete)
        finally:
            audit_log.record(
                audit.SHARE_ACCESS,
                None,
                client,
                share_id=got.share.id,
                kind=kind,
                outcome="ok" if complete else "incomplete",
                access=got.log_id,
                bytes_sent=sent,
            )

    headers = {
        **NO_STORE,
        "Content-Length": str(size),
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    return ShareStream(chunks, finished, headers, media_type, sh.chunk)


# -- routes --------------------------------------------------------------------------------------------


@router.get("/{token}", response_class=HTMLResponse)
def landing(request: Request, token: str) -> Response:
    """What the link holds (no patient name), a passcode form if needed, and the Download button."""
    try:
        got = use(request, token, "page")
        series, files = series_of(request, got)
    except PasscodeRequired:
        return page("Shared series", passcode_form(token), 200)
    except PacsIndexError as exc:
        return refusal_page(exc, token)
    return with_grant(
        landing_page(token, got.share, series, sharing(request).settings.tz), request, token, got
    )


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
    response = Response(status_code=303, headers={**NO_STORE, "Location": f"/share/{token}"})
    return with_grant(response, request, token, got)


@router.get("/{token}/download")
def download(request: Request, token: str) -> Response:
    """The series as a zip, built while it is sent."""
    return _download(request, token, None)


@router.post("/{token}/download")
def download_with_passcode(
    request: Request, token: str, passcode: Annotated[str, Form(max_length=1024)] = ""
) -> Response:
    """The zip, with the passcode in a form (for clients that keep no cookies)."""
    try:
        same_origin_form(request)
    except PacsIndexError as exc:
        return refusal_page(exc, token)
    return _download(request, token, passcode or None)


def _download(request: Request, token: str, passcode: str | None) -> Response:
    sh = sharing(request)
    got: Access | None = None
    try:
        slot = take_slot(request, token, "download")
    except PacsIndexError as exc:
        return refusal_page(exc, token)
    try:
        got = use(request, token, "download", passcode=passcode)
        series, files = series_of(request, got)
        z = SeriesZip(series, files, reader_for=sh.reader_for, settings=sh.settings, chunk=sh.chunk)
    except PacsIndexError as exc:
        slot.release()
        if got is not None:
            failed(request, got, "download", exc)
        return refusal_page(exc, token)
    except BaseException:
        slot.release()
        raise
    response = stream(request, got, slot, "download", iter(z), z.size, z.filename, "application/zip")
    return with_grant(response, request, token, got)


@router.get("/{token}/files")
def file_list(request: Request, token: str) -> Response:
    """The files of the series, each with a URL that works under this link only. JSON when asked for."""
    try:
        got = use(request, token, "files")
        series, files = series_of(request, got)
    except PacsIndexError as exc:
        if "application/json" in request.headers.get("accept", ""):
            status = refusal_page(exc).status_code
            return JSONResponse({"detail": str(exc)}, status_code=status, headers=NO_STORE)
        return refusal_page(exc, token)
    single = got.share.max_downloads is None
    rows = [
        {
            "n": n,
            "name": name,
            "size": f["size"],
            "InstanceNumber": f["InstanceNumber"],
            "SOPInstanceUID": f["SOPInstanceUID"],
            "url": f"/share/{token}/files/{n}" if single else None,
        }
        for n, (name, f) in enumerate(zip(member_names(len(files)), files, strict=True), start=1)
    ]
    if "application/json" in request.headers.get("accept", ""):
        return with_grant(JSONResponse({"files": rows}, headers=NO_STORE), request, token, got)
    return with_grant(files_page(token, rows, single), request, token, got)


@router.get("/{token}/files/{n}")
def one_file(request: Request, token: str, n: str) -> Response:
    """One file of the series by its number in the list (1 ... file_count)."""
    sh = sharing(request)
    got: Access | None = None
    try:
        slot = take_slot(request, token, "file")
    except PacsIndexError as exc:
        return refusal_page(exc, token)
    try:
        got = use(request, token, "file")
        series, files = series_of(request, got)
        if not (n.isascii() and n.isdigit() and len(n) <= 7 and 1 <= int(n) <= len(files)):
            raise NotFound(f"this series has files 1 to {len(files)}")
        name = member_names(len(files))[int(n) - 1]
        size, chunks = stream_file(
            files[int(n) - 1]["path"], name, reader_for=sh.reader_for, settings=sh.settings, chunk=sh.chunk
        )
    except PacsIndexError as exc:
        slot.release()
        if got is not None:
            failed(request, got, "file", exc)
        if isinstance(exc, NotFound):
            return page("File not found", f"<p class='notice error' role='alert'>{escape(exc)}.</p>", 404)
        return refusal_page(exc, token)
    except BaseException:
        slot.release()
        raise
    return stream(request, got, slot, "file", chunks, size, name, "application/dicom")
