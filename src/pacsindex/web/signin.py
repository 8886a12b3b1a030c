"""Signing in and out (`/auth/*`, the only routes open without a session) and `GET /api/me`."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from pacsindex.accounts import audit
from pacsindex.accounts.auth import Session
from pacsindex.errors import AuthError, SignInFailed
from pacsindex.sources.smb import nas
from pacsindex.web.errors import error_response
from pacsindex.web.models import Me, PasswordChange, Problem, SignIn
from pacsindex.web.security import (
    COOKIE,
    SignedIn,
    WebState,
    check_same_origin,
    client_address,
    cookie_scheme,
    signed_in,
    state,
)

log = logging.getLogger(__name__)

public = APIRouter(prefix="/auth", tags=["sign-in"])
api = APIRouter(tags=["sign-in"])


def me_for(st: WebState, session: Session) -> Me:
    return Me(
        name=session.user.name,
        is_admin=session.user.is_admin,
        csrf_token=session.csrf_token,
        idle_minutes=st.settings.session_idle_minutes,
        timezone=st.settings.timezone,
        roots=nas.indexing_roots(st.settings),  # the settings' roots, then the saved NAS's
    )


@public.post(
    "/signin",
    response_model=Me,
    responses={401: {"model": Problem}, 429: {"model": Problem, "description": "locked; see Retry-After"}},
)
def sign_in(body: SignIn, request: Request, response: Response) -> Me | JSONResponse:
    """Check a name and password; on success set the session cookie and return the CSRF token."""
    check_same_origin(request)
    st = state(request)
    client = client_address(request)
    try:
        session = st.accounts.sign_in(body.name, body.password, client)
    except AuthError as exc:
        reason = "locked" if not isinstance(exc, SignInFailed) else "wrong name or password"
        st.audit.record(audit.SIGNIN_FAILED, body.name, client, reason=reason)
        log.info("failed sign-in (%s)", reason)
        return error_response(exc)
    assert session.token is not None
    response.set_cookie(
        COOKIE,
        session.token,
        httponly=True,
        samesite="strict",
        secure=st.settings.secure_cookies,
        path="/",
    )
    st.audit.record(audit.SIGNIN, session.user.name, client)
    return me_for(st, session)


@public.post("/signout", status_code=204, response_class=Response)
def sign_out(request: Request, token: Annotated[str | None, Depends(cookie_scheme)]) -> Response:
    """End the session (it needs the CSRF token like any change) and clear the cookie."""
    st = state(request)
    try:
        session = signed_in(request, token, request.headers.get("x-csrf-token"))
    except AuthError:
        session = None  # already gone: just clear the cookie
    if session is not None:
        st.accounts.sign_out(token)
        st.audit.record(audit.SIGNOUT, session.user.name, client_address(request))
    response = Response(status_code=204)
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=st.settings.secure_cookies
    )
    return response


@api.post("/me/password", status_code=204, response_class=Response, responses={403: {"model": Problem}})
def change_password(body: PasswordChange, request: Request, session: SignedIn) -> Response:
    """Change your own password (the current one is needed). Every session of yours ends, this one too:
    sign in again with the new password."""
    st = state(request)
    st.accounts.change_own_password(session.user.name, body.current_password, body.new_password)
    st.audit.record(
        audit.USER_UPDATE,
        session.user.name,
        client_address(request),
        name=session.user.name,
        password="changed by the user",
    )
    response = Response(status_code=204)
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=st.settings.secure_cookies
    )
    return response


@api.get("/me", response_model=Me)
def who_am_i(request: Request, session: SignedIn) -> Me:
    """The signed-in user, the CSRF token to send with changes, and the page's settings."""
    return me_for(state(request), session)
