"""The one error hierarchy of pacsindex.

    PacsIndexError
    ├── ConfigError              bad settings, bad command-line values
    ├── InvalidQuery             a search or API value that makes no sense (bad date, huge limit)
    │   └── NotAcceptable        a DICOMweb client asked for a media type pacsindex cannot send
    ├── IndexNotFound            no index database yet: run `pacsindex index` first
    ├── StoreError               the index database cannot be opened or written
    │   └── BackupError          a backup cannot be written or restored: damaged, newer, not a backup
    ├── SourceError              a root or a file list cannot be reached or read
    │   ├── SourceUnreachable    host down, connection refused, timed out
    │   │   └── NasUnreachable   the NAS a connection test named did not answer (502 from the web API)
    │   ├── AuthenticationFailed wrong user name or password
    │   ├── ShareNotFound        the SMB share does not exist
    │   ├── PermissionDenied     the account may not read there
    │   └── FileChanged          a file changed size while it was being sent
    ├── OutputError              a file or folder pacsindex was asked to write cannot be written
    ├── DicomReadError           one file's header or pixel data could not be read (DICOMweb frames)
    ├── NotFound                 an unknown SeriesKey, share, user ...
    ├── Conflict                 e.g. an indexing run is already going
    ├── Busy                     too many DICOMweb retrievals at once (carries retry_after)
    ├── AuthError                no valid session: not signed in, or signed out for being idle
    │   ├── SignInFailed         wrong user name or password, or the account is disabled
    │   ├── TooManyAttempts      sign-in locked for a while after repeated failures (carries retry_after)
    │   └── TokenRejected        DICOMweb: no, a wrong or a revoked API token (carries the challenge)
    ├── Forbidden                signed in, but not allowed (staff asking for an admin page)
    │   └── CsrfRejected         a state-changing request without the session's CSRF token
    ├── OrthancError             the practice's PACS (Orthanc) cannot be used: not an Orthanc, odd answers
    │   ├── OrthancUnreachable   Orthanc down, a wrong address or port, timed out
    │   ├── OrthancAuthFailed    Orthanc refused the user name or password
    │   └── OrthancRejected      Orthanc refused one file (carries path + reason)
    └── ShareError               a share link cannot be used
        ├── ShareLinkNotFound    no such share link (a wrong, truncated or made-up token; an unknown id)
        ├── ShareExpired
        ├── ShareRevoked
        ├── ShareLocked          too many wrong passcodes (carries retry_after)
        ├── ShareLimitReached    download limit used up
        ├── PasscodeRequired     the link has a passcode and none was given
        ├── BadPasscode          a wrong passcode
        └── ShareBusy            too many share downloads at once (carries retry_after)

Foreign exceptions (OSError, sqlite3.Error, smbprotocol's) are translated where they enter, with
`raise ... from exc`. The CLI turns any PacsIndexError into one line and its class's `exit_code` (the codes
are listed in EXIT_CODES and in the README, and a test keeps the two alike); the web layer maps them to
HTTP statuses in one table (web/status.py).
"""

from __future__ import annotations


class PacsIndexError(Exception):
    """Base of every error pacsindex raises on purpose."""

    exit_code = 1


class ConfigError(PacsIndexError):
    exit_code = 2


class InvalidQuery(PacsIndexError):
    exit_code = 2


class NotAcceptable(InvalidQuery):
    pass


class IndexNotFound(PacsIndexError):
    exit_code = 3


class StoreError(PacsIndexError):
    exit_code = 4


class SourceError(PacsIndexError):
    exit_code = 5


class SourceUnreachable(SourceError):
    pass


class NasUnreachable(SourceUnreachable):
    """An admin's connection test could not reach the NAS: the server is fine, the NAS is not (502)."""


class AuthenticationFailed(SourceError):
    pass


class ShareNotFound(SourceError):
    pass


class PermissionDenied(SourceError):
    pass


class FileChanged(SourceError):
    pass


class OutputError(PacsIndexError):
    """`--json-out FILE` or `sample DIR` names a place that cannot be written."""

    exit_code = 11


class DicomReadError(PacsIndexError):
    """One file's header or pixel data could not be read (a DICOMweb frame or bulk data request)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class NotFound(PacsIndexError):
    exit_code = 6


class Conflict(PacsIndexError):
    exit_code = 7


class AuthError(PacsIndexError):
    exit_code = 8


class SignInFailed(AuthError):
    pass


class TooManyAttempts(AuthError):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class TokenRejected(AuthError):
    # The WWW-Authenticate value a 401 answer carries, so a machine client knows how to sign in.
    challenge = 'Bearer realm="pacsindex DICOMweb", Basic realm="pacsindex DICOMweb", charset="UTF-8"'


class Forbidden(PacsIndexError):
    exit_code = 9


class CsrfRejected(Forbidden):
    pass


class ShareError(PacsIndexError):
    # Set by pacsindex.share.links when it refuses a link: which share (None for an unknown token), the
    # outcome
    # it wrote to the access log, and that row's id, so the web layer can put the same in the audit log.
    share_id: int | None = None
    outcome: str | None = None
    log_id: int | None = None


class ShareExpired(ShareError):
    pass


class ShareRevoked(ShareError):
    pass


class ShareLocked(ShareError):
    def __init__(self, message: str, retry_after: int = 900) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class ShareLimitReached(ShareError):
    pass


class ShareLinkNotFound(ShareError):
    pass


class PasscodeRequired(ShareError):
    pass


class BadPasscode(ShareError):
    pass


class ShareBusy(ShareError):
    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class OrthancError(PacsIndexError):
    exit_code = 10


class OrthancUnreachable(OrthancError):
    pass


class OrthancAuthFailed(OrthancError):
    pass


class OrthancRejected(OrthancError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class Busy(PacsIndexError):
    """Too many DICOMweb retrievals at once: try again after `retry_after` seconds (429)."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class BackupError(StoreError):
    pass


# Every exit code of the `pacsindex` command: README.md's "Exit codes" table lists the same (a test checks).
EXIT_CODES: dict[int, str] = {
    0: "success, even when some files of the archive could not be read (see `pacsindex problems`)",
    1: "the indexing run failed, or some files could not be sent to Orthanc",
    2: "bad arguments or settings, including a bad settings-file section and a port already in use",
    3: "no index yet: run `pacsindex index` first",
    4: "the index cannot be opened or written: not a pacsindex index, from a newer pacsindex, read-only",
    5: "a root, a file list or the NAS cannot be reached or read",
    6: "not found: an unknown SeriesKey, user or token",
    7: "another indexing run is using the index",
    8: "authentication failed",
    9: "not allowed",
    10: "Orthanc cannot be used: unreachable, wrong password, or not an Orthanc",
    11: "an output file or folder (`--json-out`, `sample DIR`) cannot be written",
    130: "interrupted (Ctrl-C twice)",
}
