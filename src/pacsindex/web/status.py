"""The one status table: the HTTP status of every pacsindex error, for the JSON API (`errors.py`) and for
the HTML pages a share link's recipient sees (`sharepages.py`). Recipients differ in a few rows only, kept
beside the table: for them a series gone from the index is "no longer available" (410), and a passcode
page is a 403 (a 401 would ask their browser for a password)."""

from __future__ import annotations

from pacsindex.errors import (
    AuthError,
    BadPasscode,
    ConfigError,
    Conflict,
    CsrfRejected,
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

__all__ = ["RECIPIENT", "STATUS", "status_for"]

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
}


# What a share link's recipient gets instead (HTML pages, and the JSON the page's script reads).
RECIPIENT: dict[type[PacsIndexError], int] = {
    PacsIndexError: 503,  # "not available right now": never a bare 500 for someone outside the practice
    PasscodeRequired: 403,
    CsrfRejected: 403,
    ConfigError: 503,  # the archive or the server is not set up: not the recipient's doing
    SourceError: 503,
    NotFound: 410,
    IndexNotFound: 410,
}


def status_for(exc: PacsIndexError, *, recipient: bool = False) -> int:
    """The status for `exc`: the most specific class on its MRO in the table (RECIPIENT first for them)."""
    for cls in type(exc).__mro__:
        if recipient and cls in RECIPIENT:
            return RECIPIENT[cls]
        if cls in STATUS:
            return STATUS[cls]
    return 500
