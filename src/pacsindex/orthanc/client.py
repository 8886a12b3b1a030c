"""Sending a series to the practice's PACS, Orthanc, over its REST API: the connection settings (saved
section "orthanc": url, user, password), a small client (`GET /system` to test, `POST /tools/find` to see
which instances Orthanc already holds, `POST /instances` to store one file), `send_series` with progress
and per-file failures. The web service's sends run in background threads kept in the index
(`pacsindex.orthanc.sends`); the `pacsindex send-to-orthanc KEY` command is in cli/staff.py.

Instances Orthanc already has (same SOPInstanceUID in the same series) are skipped without reading the
file; Orthanc answering "AlreadyStored" counts as skipped too, so a second send adds nothing. When the
archive holds several copies of an instance, the first copy that reaches Orthanc counts; a damaged or
missing copy before it is no failure, and an instance is never counted as there until Orthanc has it. A
file that cannot be read, or that Orthanc refuses (400 for a damaged or non-DICOM file), is recorded with
its reason and the rest go on. An unreachable Orthanc, a refused password or an address that is not an
Orthanc ends the send with one clear error.

Files are opened with `sources.reader_for` (local, UNC or smb://). Passwords are never logged or returned.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from pacsindex.config import saved
from pacsindex.errors import (
    ConfigError,
    NotFound,
    OrthancAuthFailed,
    OrthancError,
    OrthancRejected,
    OrthancUnreachable,
    PacsIndexError,
    SourceUnreachable,
    StoreError,
)
from pacsindex.index import store
from pacsindex.sources.readers import Readers

log = logging.getLogger(__name__)

SECTION = "orthanc"
SECRETS = ("password",)
PASSWORD_ENV = "PACSINDEX_ORTHANC_PASSWORD"
CONNECT_TIMEOUT_S = 10.0
ANSWER_TIMEOUT_S = 30.0  # a question (test connection, which instances are there) gives up after this
UPLOAD_TIMEOUT_S = 300.0  # one large instance over a slow link


# -- the connection settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    url: str = ""
    user: str = ""
    password: str = field(default="", repr=False)

    def public(self) -> dict[str, Any]:
        return saved.public({"url": self.url, "user": self.user, "password": self.password}, SECRETS)


def check_url(url: str) -> str:
    """The Orthanc REST address without a trailing slash; ConfigError if it is not http(s)://host[:port]."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "the Orthanc address must look like http://pacs-server:8042 (http or https, a host name and "
            "the REST port)"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("put the Orthanc user and password in their own fields, not in the address")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError("the port in the Orthanc address is not a number") from None
    return url


def load_connection(data_dir: Path) -> Connection:
    values = saved.load(data_dir, SECTION)
    return Connection(
        str(values.get("url") or ""), str(values.get("user") or ""), str(values.get("password") or "")
    )


def save_connection(
    data_dir: Path, *, url: str, user: str, password: str | None = None, clear_password: bool = False
) -> Connection:
    """Save the address and user; the password only when one is given (None keeps the saved one)."""
    old = load_connection(data_dir)
    new_password = "" if clear_password else (old.password if password is None else password)
    conn = Connection(check_url(url) if url.strip() else "", user.strip(), new_password)
    saved.save(data_dir, SECTION, {"url": conn.url, "user": conn.user, "password": conn.password})
    return conn


def connection_for(
    data_dir: Path,
    *,
    url: str | None = None,
    user: str | None = None,
    password: str | None = None,
    env: Mapping[str, str],
) -> Connection:
    """The saved connection with what was given instead (a password from PACSINDEX_ORTHANC_PASSWORD in
    `env`, the environment the entry point passes down); ConfigError when there is no address at all."""
    stored = load_connection(data_dir)
    conn = Connection(
        url if url else stored.url,
        user if user is not None else stored.user,
        password if password is not None else (env.get(PASSWORD_ENV) or stored.password),
    )
    if not conn.url:
        raise ConfigError(
            "Orthanc is not set up: an admin enters its address on the Users page (Orthanc), or give --url"
        )
    return replace(conn, url=check_url(conn.url))


# -- the client --------------------------------------------------------------------------------------


class OrthancClient:
    """Orthanc's REST API, with its failures turned into OrthancError subclasses that say what to do."""

    def __init__(
        self,
        conn: Connection,
        *,
        transport: httpx.BaseTransport | None = None,
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
    ) -> None:
        self.conn = replace(conn, url=check_url(conn.url))
        auth = (conn.user, conn.password) if conn.user or conn.password else None
        self._upload_timeout = httpx.Timeout(UPLOAD_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        self._http = httpx.Client(
            base_url=self.conn.url,
            auth=auth,
            timeout=httpx.Timeout(answer_timeout_s, connect=min(CONNECT_TIMEOUT_S, answer_timeout_s)),
            transport=transport,
            follow_redirects=False,
        )

    def __enter__(self) -> OrthancClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        url = self.conn.url
        try:
            response = self._http.request(method, path, **kw)
        except httpx.TimeoutException as exc:
            raise OrthancUnreachable(
                f"Orthanc at {url} did not answer in time: check that Orthanc is running and the network "
                "between this server and the PACS"
            ) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise OrthancUnreachable(
                f"Orthanc at {url} cannot be reached ({type(exc).__name__}: {exc}): check the address and "
                "port in the Orthanc settings and that Orthanc is running"
            ) from exc
        except httpx.HTTPError as exc:
            raise OrthancError(f"cannot talk to Orthanc at {url}: {exc}") from exc
        if response.status_code in (401, 403):
            raise OrthancAuthFailed(
                f"Orthanc at {url} refused the user name or password: check them in the Orthanc settings "
                "(they must match a user in Orthanc's RegisteredUsers)"
            )
        return response

    def system(self) -> dict[str, Any]:
        """`GET /system`: Orthanc's name and version; OrthancError when the address is not an Orthanc."""
        response = self._call("GET", "/system")
        try:
            info = response.json() if response.status_code == 200 else None
        except ValueError:
            info = None
        if not isinstance(info, dict) or "Version" not in info:
            raise OrthancError(
                f"{self.conn.url} answered {response.status_code} but is not an Orthanc REST API: use the "
                "address of Orthanc's web port, e.g. http://pacs-server:8042"
            )
        return info

    def test_connection(self) -> dict[str, Any]:
        info = self.system()
        return {
            "url": self.conn.url,
            "name": info.get("Name"),
            "version": info.get("Version"),
            "dicom_aet": info.get("DicomAet"),
        }

    def series_instance_uids(self, series_uid: str) -> set[str]:
        """SOPInstanceUIDs Orthanc holds in the series with this SeriesInstanceUID."""
        body = {"Level": "Instance", "Query": {"SeriesInstanceUID": series_uid}, "Expand": True}
        response = self._call("POST", "/tools/find", json=body)
        if response.status_code != 200:
            self.system()  # something that is not an Orthanc at all says so, not "HTTP 404"
            raise OrthancError(f"Orthanc could not list the series' instances: {_reason(response)}")
        return {
            str(i.get("MainDicomTags", {}).get("SOPInstanceUID"))
            for i in response.json()
            if i.get("MainDicomTags", {}).get("SOPInstanceUID")
        }

    def store(self, data: bytes, path: str = "") -> str:
        """`POST /instances`: "Success" or "AlreadyStored"; OrthancRejected when Orthanc refuses the file."""
        response = self._call(
            "POST",
            "/instances",
            content=data,
            headers={"Content-Type": "application/dicom"},
            timeout=self._upload_timeout,  # storing a large instance may take Orthanc a while
        )
        if response.status_code == 200:
            try:
                return str(response.json().get("Status") or "Success")
            except (ValueError, AttributeError):
                return "Success"
        if response.status_code in (404, 405):
            self.system()  # not an Orthanc: one clear error for the whole send
        raise OrthancRejected(path, f"Orthanc refused it: {_reason(response)}")


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        text = "; ".join(str(body[k]) for k in ("Message", "Details") if body.get(k))
        if text:
            return f"{text} (HTTP {response.status_code})"
    return f"HTTP {response.status_code}"


# -- sending one series ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    path: str
    InstanceNumber: int | None
    reason: str


@dataclass(frozen=True)
class SendProgress:
    """After each file: how many of `total` are done, and how each went."""

    SeriesKey: str
    total: int
    done: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    failures: tuple[Failure, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failures": [asdict(f) for f in self.failures]}


ProgressCallback = Callable[[SendProgress], None]


def series_files(db: str | os.PathLike[str], key: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The series (its stored fields) and its files in instance order; NotFound for an unknown key."""
    conn = store.connect(db, create=False, readonly=True)
    try:
        series = store.get_series(conn, key.lower())
        if series is None:
            raise NotFound("no series with that SeriesKey (the index may have changed: search again)")
        files = list(store.series_files(conn, series["series_id"]))
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the index: {exc}") from exc
    finally:
        conn.close()
    return series, files


def _unreadable(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "cannot be read: not found (moved or deleted since indexing)"
    if isinstance(exc, PermissionError):
        return "cannot be read: permission denied"
    if isinstance(exc, OSError):
        return f"cannot be read: {exc.strerror or type(exc).__name__}"
    return f"cannot be read: {exc}"


def send_series(
    db: str | os.PathLike[str],
    key: str,
    client: OrthancClient,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    settings: Any = None,
    reader_for: Callable[[str], Any] | None = None,
    resume: SendProgress | None = None,
) -> SendProgress:
    """Upload every file of the series Orthanc does not have yet; the final progress. Raises only for what
    ends the whole send (Orthanc unreachable, password refused, unknown series). `resume`, the progress a
    stopped send had reached, carries its counters on from the first file it had not done."""
    series, files = series_files(db, key)
    p = SendProgress(SeriesKey=series["SeriesKey"], total=len(files))
    if resume is not None:
        p = replace(resume, SeriesKey=p.SeriesKey, total=len(files), done=min(resume.done, len(files)))
    report = on_progress or (lambda _p: None)
    report(p)
    series_uid = series.get("SeriesInstanceUID")
    have = client.series_instance_uids(series_uid) if series_uid else set()
    readers = Readers(reader_for, settings)
    # Copies of one instance (the same SOPInstanceUID in several files): a copy that fails leaves the
    # instance to the next copy, and is no failure once another copy reached Orthanc.
    failed_copies: dict[str, list[Failure]] = {}
    for f in files[p.done :]:
        if cancel is not None and cancel.is_set():
            break
        uid, path = f.get("SOPInstanceUID"), str(f["path"])
        if uid and uid in have:
            p = replace(p, done=p.done + 1, skipped=p.skipped + 1)
            report(p)
            continue
        failure: str | None = None
        try:
            with readers(path).open(path) as fh:
                data = fh.read()
        except SourceUnreachable:
            raise  # the NAS is gone: the whole send ends here, it is not one unreadable file after another
        except (OSError, PacsIndexError) as exc:
            failure = _unreadable(exc)
        else:
            try:
                outcome = client.store(data, path)
            except OrthancRejected as exc:
                failure = exc.reason
        if failure is not None:
            lost = Failure(path, f.get("InstanceNumber"), failure)
            p = replace(p, done=p.done + 1, failed=p.failed + 1, failures=(*p.failures, lost))
            if uid:
                failed_copies.setdefault(uid, []).append(lost)
            report(p)
            continue
        if outcome == "AlreadyStored":
            p = replace(p, done=p.done + 1, skipped=p.skipped + 1)
        else:
            p = replace(p, done=p.done + 1, sent=p.sent + 1)
        if uid:
            have.add(uid)  # only now: further copies of this instance are not sent twice
            covered = failed_copies.pop(uid, [])
            if covered:
                p = replace(
                    p,
                    failed=p.failed - len(covered),
                    skipped=p.skipped + len(covered),
                    failures=tuple(x for x in p.failures if x not in covered),
                )
        report(p)
    log.info(
        "sent series %s to Orthanc: %d sent, %d skipped, %d failed of %d",
        p.SeriesKey,
        p.sent,
        p.skipped,
        p.failed,
        p.total,
    )
    return p
