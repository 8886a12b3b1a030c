"""The recipient's image viewer, behind a share link: `/share/{token}/view` (the same viewer page staff
use), `/share/{token}/view/series/{key}` (a shared series' images), `.../thumbnail`, and
`/share/{token}/view/images/{id}/render`.

What a recipient may see is exactly `share_series_keys(share)`: a series key or image id outside it is
answered 404, the same as one that does not exist, and the attempt is in the share's access log as
not_found. Every request passes the link's checks (expiry, withdrawal, use limit, passcode grant) like a
download. Opening the viewer is one "view" row in the access log and one audit entry; the images drawn in
it are checked the same way but not logged one by one (only refusals are). The patient's name is shown
only behind a passcode: a link without one shows what the landing page shows.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from pacsindex.accounts import audit
from pacsindex.errors import NotFound, PacsIndexError, PasscodeRequired, ShareLinkNotFound
from pacsindex.share.links import Access, share_series_keys
from pacsindex.viewer import images as viewer_images
from pacsindex.web.indexing import index_reader
from pacsindex.web.recipient import served, sharing, use, with_grant
from pacsindex.web.security import client_address, state
from pacsindex.web.sharepages import NO_STORE, page, passcode_form, refusal_page
from pacsindex.web.viewing import (
    SERIES_KEY,
    THUMBNAIL,
    Center,
    Format,
    Frame,
    Quality,
    Size,
    Width,
    image_response,
    render_request,
    series_listing,
    thumbnail_of,
    viewer_page,
    viewing,
)

__all__ = ["install", "router"]

router = APIRouter(prefix="/share/{token}/view", include_in_schema=False)
Key = Annotated[str, Path(pattern=SERIES_KEY)]


def install(app: FastAPI) -> None:
    app.include_router(router)


def _refused(exc: PacsIndexError) -> JSONResponse:
    status = 404 if type(exc) is NotFound else refusal_page(exc).status_code
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=NO_STORE)


def _check(request: Request, token: str) -> Access:
    """The link's checks for one image request (refusals logged and audited by `use`)."""
    return use(request, token, "image")


def _outside(request: Request, token: str, what: str) -> NotFound:
    """A key or id the share does not hold: 404, and a not_found row in the share's access log."""
    logged = sharing(request).shares.refuse(
        token,
        ShareLinkNotFound(f"no such {what} under this link"),
        "not_found",
        kind="image",
        client=client_address(request),
        user_agent=request.headers.get("user-agent"),
    )
    state(request).audit.record(
        audit.SHARE_ACCESS,
        None,
        client_address(request),
        share_id=logged.share_id,
        kind="image",
        outcome="not_found",
        access=logged.log_id,
        asked=what,
    )
    return NotFound(f"this link does not hold that {what}")


@router.get("", response_class=HTMLResponse)
def view(request: Request, token: str) -> Response:
    """The viewer, opened on the first shared series."""
    try:
        got = use(request, token, "view")
    except PasscodeRequired:
        return page("Shared images", passcode_form(token), 200)
    except PacsIndexError as exc:
        return refusal_page(exc, token)
    served(request, got, "view")  # audited: the recipient opened the images
    first = sorted(share_series_keys(got.share))[0]
    # JPEG (quality 90) for recipients: a phone on a mobile network, a tenth of the PNG's bytes
    response = viewer_page(
        f"/share/{token}/view/series/{first}", f"/share/{token}", "Back to the share", fmt="jpeg"
    )
    return with_grant(response, request, token, got)


@router.get("/series/{key}")
async def shared_series(request: Request, token: str, key: Key) -> Response:
    key = key.lower()
    try:
        got = await run_in_threadpool(_check, request, token)
        keys = share_series_keys(got.share)
        if key not in keys:
            raise await run_in_threadpool(_outside, request, token, "series")
        with index_reader(sharing(request).settings.db) as conn:
            listing = series_listing(
                conn,
                key,
                f"/share/{token}/view/series/{{key}}",
                f"/share/{token}/view/images/{{id}}/render",
                f"/share/{token}/view/series/{{key}}/thumbnail",
                keys,
            )
    except PacsIndexError as exc:
        return _refused(exc)
    if not got.share.has_passcode:
        listing["series"]["PatientName"] = None
    return JSONResponse(listing, headers=NO_STORE)


@router.get("/series/{key}/thumbnail")
async def shared_thumbnail(
    request: Request,
    token: str,
    key: Key,
    size: Annotated[int, Query(ge=32, le=512)] = THUMBNAIL,
) -> Response:
    key = key.lower()
    try:
        got = await run_in_threadpool(_check, request, token)
        if key not in share_series_keys(got.share):
            raise await run_in_threadpool(_outside, request, token, "series")
        response = await thumbnail_of(request, key, size)
    except PacsIndexError as exc:
        return _refused(exc)
    response.headers.update(NO_STORE)
    return response


@router.get("/images/{image_id}/render")
async def shared_image(
    request: Request,
    token: str,
    image_id: Annotated[int, Path(ge=1, le=2**62)],
    frame: Frame = 1,
    size: Size = None,
    wc: Center = None,
    ww: Width = None,
    format: Format = "png",  # noqa: A002
    quality: Quality = 90,
) -> Response:
    try:
        got = await run_in_threadpool(_check, request, token)
        with index_reader(sharing(request).settings.db) as conn:
            try:
                found = viewer_images.image(conn, image_id)
            except NotFound:
                found = None
        if found is None or found.SeriesKey not in share_series_keys(got.share):
            raise await run_in_threadpool(_outside, request, token, "image")
    except PacsIndexError as exc:
        return _refused(exc)
    rendered = await viewing(request).renderer.render(
        found.path, render_request(frame, size, wc, ww, format, quality)
    )
    return image_response(rendered, NO_STORE)
