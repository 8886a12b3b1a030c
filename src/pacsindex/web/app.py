"""The app factory: `create_app(settings)` wires the domain (accounts, audit log, indexing jobs) to the
routes, the static page, the local API docs and the security headers. Nothing is built at import time.

Page and API share one origin: `/` the page, `/static/*` its files, `/auth/*` sign-in and sign-out,
`/api/*` the JSON API (signed-in only), `/docs` the API description (Swagger UI served from the
swagger-ui-bundle package, never from a CDN) and `/openapi.json`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacsindex import __version__
from pacsindex.accounts.audit import AuditLog
from pacsindex.accounts.auth import Accounts, Throttle
from pacsindex.config.settings import Settings
from pacsindex.index import store
from pacsindex.index.clock import Clock
from pacsindex.index.sa.samatch import load_tables
from pacsindex.ingest.jobs import IndexJobs, SourceFactory
from pacsindex.ingest.scan import ScanOptions, default_workers
from pacsindex.ingest.warm import WarmPool
from pacsindex.sources.files import source_for as default_source_for
from pacsindex.sources.readers import Readers
from pacsindex.viewer.pool import Renderer
from pacsindex.viewer.thumbs import ThumbnailCache
from pacsindex.web import (
    admin,
    errors,
    indexevents,
    indexing,
    nas,
    operations,
    searching,
    shareview,
    sharing,
    signin,
    viewing,
    worklist,
)
from pacsindex.web import dicomweb as dicomweb_web
from pacsindex.web import orthanc as orthanc_web
from pacsindex.web.limits import BodyLimit
from pacsindex.web.logredact import redact_path
from pacsindex.web.security import WebState, signed_in

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI sets inline styles.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def swagger_ui_dir() -> Path | None:
    """The Swagger UI files shipped by the swagger-ui-bundle package, if it is installed."""
    try:
        import swagger_ui_bundle  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    path = Path(swagger_ui_bundle.swagger_ui_path)
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
    scan_options: ScanOptions | None = None,
    source_for: SourceFactory | None = None,
) -> FastAPI:
    """The web service for the index at `settings.db` (created, or migrated, if needed)."""
    store.connect(settings.db).close()  # create or migrate now, not on the first request
    now = clock or time.time
    accounts = Accounts(
        settings.db,
        idle_s=settings.session_idle_minutes * 60,
        throttle=Throttle(
            per_user=settings.signin_failures_per_user,
            per_address=settings.signin_failures_per_address,
            lockout_s=settings.signin_lockout_minutes * 60,
        ),
        clock=now,
        hasher=hasher,
    )
    sources: SourceFactory = source_for or (lambda root: default_source_for(root, settings))
    options = scan_options or ScanOptions(
        workers=settings.workers, recent_s=settings.quick_recent_hours * 3600
    )
    # Header readers kept between runs: a scheduled pass or the Start button reads at once (none when the
    # settings say workers = 1: runs read in this process).
    readers = WarmPool(options.workers or default_workers(), in_process=options.workers == 1)
    jobs = IndexJobs(
        settings.db,
        sources,
        options=options,
        status_path=settings.status_path,
        tz=settings.tz,
        tables=load_tables(settings.extra),  # ConfigError for a bad section: checked at start-up
        pool=readers,
    )
    web = WebState(settings=settings, accounts=accounts, audit=AuditLog(settings.db, clock=now), jobs=jobs)
    # Images are decoded and drawn in worker processes (the viewer, thumbnails, DICOMweb /rendered).
    renderer = Renderer(Readers(settings=settings), workers=settings.render_workers)
    thumbnails = ThumbnailCache(settings.data_path / "thumbnails", settings.thumbnail_cache_mb << 20)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        renderer.warm()
        readers.start()  # in the background: requests are answered meanwhile
        operations.startup(app)  # the indexing schedule; sends to Orthanc a stop left unfinished resume
        yield
        operations.shutdown(app)  # runs and sends stop between files, audited as stopped
        renderer.shutdown()
        jobs.shutdown()
        readers.close()  # after the run stopped: it gives the pool back first
        app.state.sharing.close()  # the share de-identification worker processes, if any were started
        web.audit.flush(timeout=30)

    app = FastAPI(
        title="pacsindex",
        version=__version__,
        description="Search a radiology practice's DICOM archive. Sign in with POST /auth/signin first; "
        "send the csrf_token from GET /api/me in the X-CSRF-Token header of every POST and PATCH.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.pacsindex = web
    app.state.closing = threading.Event()  # set by web.server.Server as it shuts down: streams end
    errors.install(app)

    api = APIRouter(prefix="/api", dependencies=[Depends(signed_in)])
    api.include_router(signin.api)
    api.include_router(indexing.router)
    api.include_router(searching.router)
    api.include_router(admin.router)
    api.include_router(nas.router)  # /api/settings/nas
    api.include_router(indexevents.router)  # /api/index/events (server-sent), folders, runs
    api.include_router(worklist.router)  # /api/studies
    app.include_router(signin.public)
    app.include_router(api)

    sharing.install(app, settings, clock=now, hasher=hasher)  # /api/shares, /share/*
    orthanc_web.install(app, settings)  # /api/settings/orthanc, /api/orthanc/sends
    dicomweb_web.install(app, settings, clock=now)  # /dicom-web/*, /api/tokens
    viewing.install(app, settings, renderer, thumbnails)  # /viewer/*, /api/series/*/images, /api/images/*
    shareview.install(app)  # /share/{token}/view*: the recipient's viewer
    operations.install(app, settings, sources, clock=now)  # /healthz, /api/index/schedule, /api/reports
    _page_routes(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)  # 413 past max_request_bytes
    app.add_middleware(_Headers, secure=settings.secure_cookies)
    return app


def _page_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    swagger = swagger_ui_dir()
    if swagger is not None:
        app.mount("/docs/assets", StaticFiles(directory=swagger), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if swagger is None:
            body = (
                "<h1>pacsindex API</h1><p>The API description is at "
                "<a href='/openapi.json'>/openapi.json</a>. "
                "Install the swagger-ui-bundle package to browse it here.</p>"
            )
            return HTMLResponse(f"<!doctype html><html lang='en'><title>pacsindex API</title>{body}</html>")
        return HTMLResponse(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>pacsindex API</title>"
            "<link rel='stylesheet' href='/docs/assets/swagger-ui.css'></head>"
            "<body><div id='swagger-ui'></div><script src='/docs/assets/swagger-ui-bundle.js'></script>"
            "<script src='/static/docs.js'></script></body></html>"
        )


class _Headers:
    """Security headers on every response; no caching of API answers (they hold patient data); an access
    log line per request with the path but never the query string (it holds what was searched for)."""

    def __init__(self, app: ASGIApp, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                extra = {
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",
                    b"x-frame-options": b"DENY",
                    b"content-security-policy": (DOCS_CSP if path.startswith("/docs") else CSP).encode(),
                }
                if path.startswith(("/api/", "/auth/")):
                    extra[b"cache-control"] = b"no-store"
                elif path.startswith("/static/"):
                    extra[b"cache-control"] = b"no-cache"
                if self.secure:
                    extra[b"strict-transport-security"] = b"max-age=31536000"
                names = set(extra)
                headers = [(k, v) for k, v in headers if k.lower() not in names]
                headers.extend(extra.items())
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            # The page's background questions (status, new-results count) and its files: DEBUG, or they drown
            # the rest.
            quiet = path in ("/api/index/status", "/api/studies/count") or path.startswith("/static/")
            log.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s %d %.0f ms",
                scope.get("method"),
                redact_path(path),  # a share link's path holds its token, in any spelling
                status,
                (time.perf_counter() - started) * 1000,
            )
