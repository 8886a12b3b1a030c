"""The handlers that answer errors with `{"detail": ...}`, their statuses from the one table (status.py).

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

from pacsindex.errors import PacsIndexError
from pacsindex.web.sharing import redact_path
from pacsindex.web.status import STATUS, status_for
from pacsindex.web.wording import for_staff

__all__ = ["STATUS", "error_response", "install", "status_for"]

log = logging.getLogger(__name__)


def error_response(exc: PacsIndexError) -> JSONResponse:
    status = status_for(exc)
    retry_after = getattr(exc, "retry_after", None)  # TooManyAttempts, ShareLocked, ShareBusy
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
