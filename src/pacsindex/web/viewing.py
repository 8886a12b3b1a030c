"""Seeing the images, for staff: `/viewer/{SeriesKey}` (the viewer page: static ES modules, no CDN),
`/api/series/{key}/images` (a series' images in viewing order, with the study's other series for the
strip), `/api/series/{key}/thumbnail` (its middle image, cached in the data directory) and
`/api/images/{id}/render` (one image or frame, windowed, as PNG or JPEG).

The rendering itself is `pacsindex.viewer`'s; this module only translates HTTP. An image that cannot be
drawn is answered with a placeholder picture and an `X-Render-Problem` header saying why, never an error
status, so pages of thumbnails and the viewer always have something to show. Opening a series in the
viewer is written to the audit log (`view_series`); each drawn image repeats that entry, which the audit
log writes once per series and user within its repeat window, so direct use of the image route is on
record too.

`install(app, settings, renderer, thumbnails)` keeps what these routes use on app.state.viewing; the
recipients' viewer (`web.shareview`) uses the same.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from pacsindex.accounts import audit
from pacsindex.config.settings import Settings
from pacsindex.errors import NotFound
from pacsindex.index import store
from pacsindex.viewer import images as viewer_images
from pacsindex.viewer.pool import Renderer
from pacsindex.viewer.render import JPEG, PNG, Rendered, RenderRequest, placeholder
from pacsindex.viewer.thumbs import ThumbnailCache, thumbnail_key
from pacsindex.web.indexing import index_reader
from pacsindex.web.models import Problem
from pacsindex.web.security import SignedIn, client_address, signed_in, state

__all__ = ["Viewing", "install", "image_response", "render_request", "viewer_page", "viewing"]

THUMBNAIL = 160  # pixels on the longest edge unless asked otherwise
SERIES_KEY = r"^[0-9A-Fa-f]{40}$"


@dataclass(frozen=True)
class Viewing:
    """What the image routes use; built by create_app and kept on app.state.viewing."""

    renderer: Renderer
    thumbnails: ThumbnailCache


def viewing(request: Request) -> Viewing:
    found: Viewing = request.app.state.viewing
    return found


def install(app: FastAPI, settings: Settings, renderer: Renderer, thumbnails: ThumbnailCache) -> None:
    app.state.viewing = Viewing(renderer, thumbnails)
    app.include_router(api, prefix="/api", dependencies=[Depends(signed_in)])
    app.include_router(pages)


# -- shared with the recipients' viewer and DICOMweb ------------------------------------------------------

Frame = Annotated[int, Query(ge=1, le=100_000, description="frame of a multi-frame image, from 1")]
Size = Annotated[int | None, Query(ge=16, le=4096, description="fit in a square of this many pixels")]
Center = Annotated[float | None, Query(ge=-1e7, le=1e7, description="window center (e.g. HU for CT)")]
Width = Annotated[float | None, Query(gt=0, le=1e7, description="window width")]
Format = Annotated[Literal["png", "jpeg"], Query(description="png (exact) or jpeg (smaller)")]
Quality = Annotated[int, Query(ge=1, le=100, description="JPEG quality")]


def render_request(
    frame: int = 1,
    size: int | None = None,
    wc: float | None = None,
    ww: float | None = None,
    fmt: str = "png",
    quality: int = 90,
    viewport: tuple[int, int] | None = None,
) -> RenderRequest:
    window = (wc, ww) if wc is not None and ww is not None else None
    media = JPEG if fmt in ("jpeg", JPEG) else PNG
    return RenderRequest(
        frame=frame, size=size, viewport=viewport, window=window, media_type=media, quality=quality
    )


def _header_text(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii").replace("\r", " ").replace("\n", " ")[:300]


def image_response(rendered: Rendered, extra: dict[str, str] | None = None) -> Response:
    """The picture, with what the viewer needs to know about it in headers."""
    headers = {"X-Frames": str(rendered.frames)}
    if rendered.window is not None:
        headers["X-Window"] = f"{rendered.window[0]:g} {rendered.window[1]:g}"
    if rendered.slice_position is not None:
        headers["X-Slice-Position"] = f"{rendered.slice_position:g}"
    if rendered.instance_number is not None:
        headers["X-Instance-Number"] = str(rendered.instance_number)
    if rendered.problem is not None:
        headers["X-Render-Problem"] = _header_text(rendered.problem)
    headers["Access-Control-Expose-Headers"] = ", ".join(
        ["X-Frames", "X-Window", "X-Slice-Position", "X-Instance-Number", "X-Render-Problem"]
    )
    return Response(rendered.body, media_type=rendered.media_type, headers={**headers, **(extra or {})})


async def thumbnail_of(request: Request, key: str, size: int) -> Response:
    """The series' middle image, small, from the cache when it is there."""
    view = viewing(request)
    with index_reader(state(request).settings.db) as conn:
        middle = viewer_images.middle_image(conn, key)
    if middle is None:
        return image_response(placeholder(render_request(size=size), "this series holds no images"))
    cache_key = thumbnail_key(key, middle.path, middle.size, middle.mtime_ns, size)
    wanted = render_request(size=size, fmt="jpeg", quality=80)
    rendered = await view.thumbnails.get_or_make(cache_key, lambda: view.renderer.render(middle.path, wanted))
    return image_response(rendered)


def series_listing(
    conn: Any, key: str, images_url: str, render_url: str, thumbnail_url: str, keys: frozenset[str] | None
) -> dict[str, Any]:
    """What the viewer opens a series with: the series, its images (with their render URLs) and the study's
    series for the strip (only those in `keys` when given: a share shows what was shared, nothing else).
    The URLs are templates with {key} and {id}, so staff and recipients use the same viewer."""
    detail = store.get_series(conn, key)
    if detail is None:
        raise NotFound("no series with that SeriesKey (the index may have changed: search again)")
    found = viewer_images.series_images(conn, key)
    strip = [s for s in viewer_images.study_series(conn, key) if keys is None or s["SeriesKey"] in keys]
    for s in strip:
        s["images_url"] = images_url.format(key=s["SeriesKey"])
        s["thumbnail_url"] = thumbnail_url.format(key=s["SeriesKey"])
    return {
        "series": {
            k: detail[k]
            for k in (
                "SeriesKey",
                "PatientName",
                "StudyDate",
                "StudyTime",
                "StudyDescription",
                "SeriesNumber",
                "SeriesDescription",
                "Modality",
            )
        },
        "study": strip,
        "images": [
            {"id": i.id, "InstanceNumber": i.InstanceNumber, "url": render_url.format(id=i.id)} for i in found
        ],
    }


def viewer_page(listing_url: str, back_url: str, back_label: str, fmt: str = "png") -> HTMLResponse:
    """The viewer's page: the same static files for staff and recipients, told where to start and in which
    format to ask for images (PNG, exact, on the practice's network; JPEG for a recipient's phone)."""
    attrs = {
        "data-listing": listing_url,
        "data-back": back_url,
        "data-back-label": back_label,
        "data-format": fmt,
    }
    data = " ".join(f'{k}="{html.escape(v, quote=True)}"' for k, v in attrs.items())
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Images · pacsindex</title><link rel='stylesheet' href='/static/viewer.css'>"
        f"<script type='module' src='/static/viewer.js'></script></head><body class='viewer' {data}>"
        "<noscript>The image viewer needs JavaScript.</noscript></body></html>"
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


# -- staff routes ---------------------------------------------------------------------------------------

api = APIRouter(tags=["images"])
pages = APIRouter(include_in_schema=False)
Key = Annotated[str, Path(pattern=SERIES_KEY, description="a SeriesKey from a search result")]


@pages.get("/viewer/{key}", response_class=HTMLResponse)
def viewer(key: Key) -> HTMLResponse:
    """The viewer for one series and the rest of its study (the page holds no patient data: the API does)."""
    key = key.lower()
    return viewer_page(f"/api/series/{key}/images", f"/#/series/{key}", "Back to the series")


@api.get("/series/{key}/images", responses={404: {"model": Problem}})
def series_images(request: Request, session: SignedIn, key: Key) -> JSONResponse:
    """The series' images in viewing order (each with its render URL), the series' description and the
    study's series. Written to the audit log as opening the series in the viewer."""
    key = key.lower()
    st = state(request)
    with index_reader(st.settings.db) as conn:
        listing = series_listing(
            conn,
            key,
            "/api/series/{key}/images",
            "/api/images/{id}/render",
            "/api/series/{key}/thumbnail",
            None,
        )
        detail = store.get_series(conn, key) or {}
    st.audit.record(
        audit.VIEW_SERIES,
        session.user.name,
        client_address(request),
        SeriesKey=key,
        PatientName=detail.get("PatientName"),
        PatientID=detail.get("PatientID"),
        StudyDate=detail.get("StudyDate"),
        Modality=detail.get("Modality"),
    )
    return JSONResponse(listing)


IMAGE = {"content": {PNG: {}, JPEG: {}}, "description": "the picture; X-Render-Problem when a placeholder"}


@api.get("/series/{key}/thumbnail", responses={200: IMAGE, 404: {"model": Problem}})
async def series_thumbnail(
    request: Request,
    key: Key,
    size: Annotated[int, Query(ge=32, le=512, description="longest edge in pixels")] = THUMBNAIL,
) -> Response:
    """The series' middle image as a small JPEG (made once, then kept in the data directory)."""
    return await thumbnail_of(request, key.lower(), size)


@api.get("/images/{image_id}/render", responses={200: IMAGE, 404: {"model": Problem}})
async def render_image(
    request: Request,
    session: SignedIn,
    image_id: Annotated[int, Path(ge=1, le=2**62, description="an image id from /api/series/{key}/images")],
    frame: Frame = 1,
    size: Size = None,
    wc: Center = None,
    ww: Width = None,
    format: Format = "png",  # noqa: A002  (the query parameter's name)
    quality: Quality = 90,
) -> Response:
    """One image (one frame of a multi-frame image), windowed: `wc`/`ww` in the modality's units, else
    the file's own window, else an automatic one. X-Frames, X-Window, X-Slice-Position say what was drawn."""
    st = state(request)
    with index_reader(st.settings.db) as conn:
        found = viewer_images.image(conn, image_id)
    st.audit.record(audit.VIEW_SERIES, session.user.name, client_address(request), SeriesKey=found.SeriesKey)
    rendered = await viewing(request).renderer.render(
        found.path, render_request(frame, size, wc, ww, format, quality)
    )
    return image_response(rendered)
