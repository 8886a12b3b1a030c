"""Who is asking: the session cookie, the CSRF check on state-changing requests, the admin check, and the
client address. Every `/api/*` route depends on `signed_in` (the router adds it), so none can forget it.

CSRF, three layers: the session cookie is SameSite=Strict (a browser does not send it on cross-site
requests); every POST/PATCH/PUT/DELETE must carry the session's own token in the X-CSRF-Token header, which
the page gets from GET /api/me and a cross-site page cannot read; and a request whose Origin names another
site, or that the browser marks `Sec-Fetch-Site: cross-site`, is refused before anything else. Sign-in has
no session yet: it takes JSON only (a cross-site form cannot send that without a CORS preflight, which this
server never grants) and the same Origin check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader

from pacsindex.accounts.audit import AuditLog
from pacsindex.accounts.auth import Accounts, Session
from pacsindex.config.settings import Settings
from pacsindex.errors import CsrfRejected, Forbidden
from pacsindex.ingest.jobs import IndexJobs

COOKIE = "pacsindex_session"
CSRF_HEADER = "X-CSRF-Token"
BACKGROUND_HEADER = "X-Background"  # "1" on the page's polls: they do not reset the idle timer
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# watching progress is not activity: never writes
PASSIVE_PATHS = frozenset({"/api/index/status", "/api/index/events"})

cookie_scheme = APIKeyCookie(
    name=COOKIE, auto_error=False, description="the session cookie that POST /auth/signin sets"
)
csrf_scheme = APIKeyHeader(
    name=CSRF_HEADER,
    auto_error=False,
    description="the csrf_token from GET /api/me; needed on POST and PATCH",
)


@dataclass(frozen=True)
class WebState:
    """What the routes use; built by create_app and kept on app.state."""

    settings: Settings
    accounts: Accounts
    audit: AuditLog
    jobs: IndexJobs


def state(request: Request) -> WebState:
    web: WebState = request.app.state.pacsindex
    return web


def client_address(request: Request) -> str:
    # uvicorn has already replaced it with X-Forwarded-For when the peer is a trusted proxy.
    return request.client.host if request.client else "unknown"


def check_same_origin(request: Request) -> None:
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRejected("cross-site request refused")
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host")
    if origin == "null" or (host and urlsplit(origin).netloc.lower() != host.lower()):
        raise CsrfRejected("cross-site request refused")


def signed_in(
    request: Request,
    token: Annotated[str | None, Security(cookie_scheme)],
    csrf: Annotated[str | None, Security(csrf_scheme)],
) -> Session:
    """The caller's live session; AuthError (401) when there is none, CsrfRejected (403) when a
    state-changing request lacks the session's token."""
    unsafe = request.method not in SAFE_METHODS
    if unsafe:
        check_same_origin(request)
    background = request.headers.get(BACKGROUND_HEADER) == "1" or request.url.path in PASSIVE_PATHS
    session = state(request).accounts.session(token, touch=not background)
    if unsafe and not session.csrf_ok(csrf):
        raise CsrfRejected("missing or wrong CSRF token: reload the page and try again")
    request.state.session = session
    return session


SignedIn = Annotated[Session, Depends(signed_in)]


def admin(session: SignedIn) -> Session:
    if not session.user.is_admin:
        raise Forbidden("only an admin may do this")
    return session


Admin = Annotated[Session, Depends(admin)]
