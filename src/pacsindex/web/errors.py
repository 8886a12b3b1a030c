"""HTTP statuses for pacsindex errors, in one table, and the handlers that answer with `{"detail": ...}`.

Every error a request can cause becomes a JSON body with a sentence a person can act on; nothing a client
sends produces a 500. Messages may echo what was typed (a patient's name), so the log gets only the status
and the error's class.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pacsindex.errors import (
    AuthError,
    BadPasscode,
    Busy,
    ConfigError,
    Conflict,
    DicomReadError,
    FileChanged,
    Forbidden,
    IndexNotFound,
    InvalidQuery,
    NasUnreachable,
    NotAcceptable,
    NotFound,
    OrthancAuthFailed,
    OrthancError,
    OrthancUnreachable,
    PacsIndexError,
    PasscodeRequired,
    ShareBusy,
    ShareError,
    ShareExpired,
    ShareLimitReached,
    ShareLinkNotFound,
    ShareLocked,
    ShareRevoked,
    SourceError,
    SourceUnreachable,
    StoreError,
    TooManyAttempts,
)
from pacsindex.web.logredact import redact_path
from pacsindex.web.wording import for_staff

log = logging.getLogger(__name__)

# The most specific class on an error's MRO decides its status.
STATUS: dict[type[PacsIndexError], int] = {
    PacsIndexError: 500,
    ConfigError: 400,
    InvalidQuery: 400,
    NotAcceptable: 406,
    SourceError: 400,  # a root that is not there or not readable: the request names it
    SourceUnreachable: 503,  # the NAS is down: try again later
    NasUnreachable: 502,  # an admin's connection test: the NAS did not answer, the server is fine
    DicomReadError: 422,
    AuthError: 401,
    TooManyAttempts: 429,
    Forbidden: 403,
    IndexNotFound: 404,
    NotFound: 404,
    Conflict: 409,
    StoreError: 503,
    ShareError: 403,
    ShareExpired: 410,
    ShareRevoked: 410,
    ShareLimitReached: 410,
    ShareLocked: 429,
    ShareLinkNotFound: 404,
    PasscodeRequired: 401,
    BadPasscode: 403,
    ShareBusy: 429,
    FileChanged: 503,
    OrthancError: 502,  # the PACS answered oddly or refused: never 401, which would sign the page out
    OrthancAuthFailed: 502,
    OrthancUnreachable: 503,
    Busy: 429,  # hardening: DICOMweb retrievals past dicomweb_max_streams
}


def status_for(exc: PacsIndexError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(exc: PacsIndexError) -> JSONResponse:
    status = status_for(exc)
    retry_after = getattr(exc, "retry_after", None)  # TooManyAttempts, ShareLocked, ShareBusy, Busy
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    challenge = getattr(exc, "challenge", None)  # TokenRejected: how a DICOMweb client signs in
    if challenge and status == 401:
        headers["WWW-Authenticate"] = challenge
    return JSONResponse({"detail": for_staff(str(exc))}, status_code=status, headers=headers or None)


async def _pacsindex_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PacsIndexError)
    response = error_response(exc)
    level = logging.WARNING if response.status_code >= 500 else logging.INFO
    log.log(
        level,
        "%s %s -> %d %s",
        request.method,
        redact_path(request.url.path),
        response.status_code,
        type(exc).__name__,
    )
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path", "header")]
        errors.append({"loc": loc, "msg": str(err.get("msg", "invalid"))})
    text = "; ".join(f"{'.'.join(e['loc']) or 'request'}: {e['msg']}" for e in errors) or "invalid request"
    return JSONResponse({"detail": text, "errors": errors}, status_code=422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, redact_path(request.url.path), exc_info=exc)
    return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(PacsIndexError, _pacsindex_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
