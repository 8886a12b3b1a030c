"""Admin-only routes: staff accounts, the audit log and the settings in force."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from pacsindex.accounts import audit
from pacsindex.accounts.auth import generate_password
from pacsindex.errors import Conflict
from pacsindex.sources.smb import nas
from pacsindex.web.auditwords import with_subjects
from pacsindex.web.models import (
    AuditEntry,
    CreatedUser,
    NewUser,
    Problem,
    SettingsOut,
    UserChange,
    UserOut,
)
from pacsindex.web.security import Admin, admin, client_address, state

router = APIRouter(tags=["admin"], dependencies=[Depends(admin)], responses={403: {"model": Problem}})

UserNamePath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
]


@router.get("/users", response_model=list[UserOut])
def list_users(request: Request) -> list[dict[str, Any]]:
    """Every staff account."""
    return [u.public() for u in state(request).accounts.list_users()]


@router.post("/users", status_code=201, response_model=CreatedUser, responses={409: {"model": Problem}})
def add_user(body: NewUser, request: Request, session: Admin) -> dict[str, Any]:
    """Create an account. Without a password one is generated and returned this once."""
    st = state(request)
    password = body.password or generate_password()
    user = st.accounts.add_user(body.name, password, admin=body.admin)
    st.audit.record(
        audit.USER_ADD, session.user.name, client_address(request), name=user.name, admin=user.is_admin
    )
    return {**user.public(), "password": None if body.password else password}


@router.patch(
    "/users/{name}",
    response_model=CreatedUser,
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
def change_user(name: UserNamePath, body: UserChange, request: Request, session: Admin) -> dict[str, Any]:
    """Grant or take admin rights, disable or enable, set or generate a new password (ends the user's
    sessions). The last enabled admin cannot be demoted or disabled."""
    st = state(request)
    if body.password and body.generate_password:
        raise Conflict("give a password or ask for one to be generated, not both")
    user = st.accounts.get_user(name)
    if body.admin is not None or body.disabled is not None:
        user = st.accounts.update_user(user.name, admin=body.admin, disabled=body.disabled)
    new_password = generate_password() if body.generate_password else body.password
    if new_password:
        st.accounts.set_password(user.name, new_password)
    changes: dict[str, object] = {
        k: v for k, v in (("admin", body.admin), ("disabled", body.disabled)) if v is not None
    }
    if new_password:
        changes["password"] = "generated" if body.generate_password else "set"
    st.audit.record(audit.USER_UPDATE, session.user.name, client_address(request), name=user.name, **changes)
    return {**user.public(), "password": new_password if body.generate_password else None}


@router.get("/audit", response_model=list[AuditEntry], responses={400: {"model": Problem}})
def audit_log(
    request: Request,
    user: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=32, description=", ".join(audit.ACTIONS))] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> list[dict[str, Any]]:
    """The audit log, newest first."""
    entries = state(request).audit.entries(user=user, action=action, limit=limit, offset=offset)
    return with_subjects(request, entries)


@router.get("/settings", response_model=SettingsOut)
def settings_in_force(request: Request) -> SettingsOut:
    """The settings the server runs with (read-only; they come from the settings file and environment)."""
    s = state(request).settings
    return SettingsOut(
        db=str(s.db),
        roots=nas.indexing_roots(s),
        timezone=s.timezone,
        workers=s.workers,
        session_idle_minutes=s.session_idle_minutes,
        secure_cookies=s.secure_cookies,
        signin_failures_per_user=s.signin_failures_per_user,
        signin_failures_per_address=s.signin_failures_per_address,
        signin_lockout_minutes=s.signin_lockout_minutes,
    )
