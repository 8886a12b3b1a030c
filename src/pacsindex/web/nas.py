"""`/api/settings/nas` (admin only): the NAS connection the service indexes by default.

GET shows the saved settings without the password (`password_set` says whether one is stored); PUT
validates and saves them, closes this process's NAS connections so the next run logs in anew, and the NAS's
smb:// URL becomes one of the default indexing roots; DELETE removes them. POST `/test` connects with the
saved settings, or with the ones in the body without saving them, and lists the first entries of the share
(or of the path). Every change and every test goes into the audit log, never the password.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from pacsindex.accounts import audit
from pacsindex.errors import NasUnreachable, NotFound, PacsIndexError, SourceUnreachable
from pacsindex.sources.smb import nas
from pacsindex.sources.smb import reader as smb
from pacsindex.web.models import NasSettingsIn, NasSettingsOut, NasTestResult, Problem
from pacsindex.web.security import Admin, admin, client_address, state

router = APIRouter(
    prefix="/settings/nas", tags=["admin"], dependencies=[Depends(admin)], responses={403: {"model": Problem}}
)

LISTED = 20  # entries a connection test shows


def _shown(found: nas.NasSettings | None) -> dict[str, Any]:
    if found is None:
        empty = {"host": "", "share": "", "path": "", "user": "", "domain": "", "port": smb.DEFAULT_PORT}
        return {**empty, "configured": False, "password_set": False, "url": None}
    return {**found.public(), "configured": True}


def _detail(found: nas.NasSettings, **more: Any) -> dict[str, Any]:
    """What the audit log keeps of a NAS setting: where and who, never the password."""
    return {"url": found.url, "nas_user": found.user, "domain": found.domain or None, **more}


@router.get("", response_model=NasSettingsOut)
def get_nas(request: Request) -> dict[str, Any]:
    """The saved NAS settings (the password is never returned: `password_set` says whether one is stored)."""
    return _shown(nas.load(state(request).settings.data_path))


@router.put("", response_model=NasSettingsOut, responses={400: {"model": Problem}})
def put_nas(body: NasSettingsIn, request: Request, session: Admin) -> dict[str, Any]:
    """Validate and save the NAS settings. Without a password the saved one is kept (same host and port);
    `clear_password` removes it. The NAS becomes one of the default indexing roots, and the next run
    connects anew with these settings."""
    st = state(request)
    values = body.model_dump(exclude={"clear_password"})
    found, password = nas.merge(st.settings.data_path, values, clear_password=body.clear_password)
    nas.save(st.settings.data_path, found)
    smb.close_connections()
    st.jobs.nas_changed()  # and the warm readers' connections
    st.audit.record(
        audit.NAS_SETTINGS, session.user.name, client_address(request), **_detail(found, password=password)
    )
    return _shown(found)


@router.delete("", response_model=NasSettingsOut, responses={404: {"model": Problem}})
def delete_nas(request: Request, session: Admin) -> dict[str, Any]:
    """Forget the NAS settings (and their password); the NAS is no longer a default indexing root."""
    st = state(request)
    found = nas.load(st.settings.data_path)
    if not nas.forget(st.settings.data_path):
        raise NotFound("no NAS settings are saved")
    smb.close_connections()
    st.jobs.nas_changed()  # and the warm readers' connections
    detail = _detail(found, removed=True) if found is not None else {"removed": True}
    st.audit.record(audit.NAS_SETTINGS, session.user.name, client_address(request), **detail)
    return _shown(None)


@router.post(
    "/test",
    response_model=NasTestResult,
    responses={
        400: {"model": Problem, "description": "bad settings, wrong login, no such share or folder"},
        404: {"model": Problem, "description": "no body and no saved settings"},
        502: {"model": Problem, "description": "the NAS did not answer"},
    },
)
def test_nas(
    request: Request, session: Admin, body: Annotated[NasSettingsIn | None, Body()] = None
) -> dict[str, Any]:
    """Connect and list the first entries of the share (or of its path), without saving anything: with the
    settings in the body (the saved password is used when none is given and the host and port are the
    same), or, without a body, with the saved settings."""
    st = state(request)
    if body is None:
        found = nas.load(st.settings.data_path)
        if found is None:
            raise NotFound("no NAS settings are saved yet: fill them in and test them first")
    else:
        values = body.model_dump(exclude={"clear_password"})
        found, _ = nas.merge(st.settings.data_path, values, clear_password=body.clear_password)
    who, client = session.user.name, client_address(request)
    try:
        entries = smb.test_connection(found, limit=LISTED, timeout=st.settings.smb_connect_timeout)
    except SourceUnreachable as exc:
        st.audit.record(audit.NAS_TEST, who, client, **_detail(found, outcome=type(exc).__name__))
        raise NasUnreachable(str(exc)) from exc
    except PacsIndexError as exc:
        st.audit.record(audit.NAS_TEST, who, client, **_detail(found, outcome=type(exc).__name__))
        raise
    st.audit.record(audit.NAS_TEST, who, client, **_detail(found, outcome="ok", entries=len(entries)))
    return {"url": found.url, "entries": entries}
