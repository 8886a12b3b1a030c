"""The audit log: who signed in (or failed to), who searched for what, who opened which series, who started
or stopped indexing, who changed which account. Owns the `audit` table (migration 2 in store.py).

This table, not the application log, is where patient identifiers that staff typed or looked at are kept:
POPIA asks the practice to be able to say who looked at a patient's records. Admins read it in the web
page; nobody can change it through pacsindex.

The page repeats a search every few seconds while indexing runs, so the same entry (same user, action and
detail) within `repeat_s` seconds is written once.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from pacsindex.errors import InvalidQuery, StoreError
from pacsindex.index import store
from pacsindex.index.clock import Clock, iso_utc

log = logging.getLogger(__name__)


# The actions recorded; the web page offers them as a filter.
SIGNIN = "signin"
SIGNIN_FAILED = "signin_failed"
SIGNOUT = "signout"
SEARCH = "search"
OPEN_SERIES = "open_series"
OPEN_STUDY = "open_study"  # a study opened from the worklist (or its series listed under its row)
INDEX_START = "index_start"
INDEX_STOP = "index_stop"
USER_ADD = "user_add"
USER_UPDATE = "user_update"
SHARE_CREATE = "share_create"
SHARE_REVOKE = "share_revoke"
SHARE_ACCESS = "share_access"  # a recipient's use of a share link, allowed or not (no user: not signed in)
NAS_SETTINGS = "nas_settings"  # an admin saved or removed the NAS connection (never the password itself)
NAS_TEST = "nas_test"  # an admin tested a NAS connection, with the outcome
ORTHANC_SETTINGS = "orthanc_settings"  # an admin changed the Orthanc address, user or password
ORTHANC_TEST = "orthanc_test"  # an admin tested the connection to Orthanc
ORTHANC_SEND = "orthanc_send"  # a series sent to Orthanc: one entry when it starts, one when it ends
TOKEN_CREATE = "token_create"  # an admin made an API token (for DICOMweb clients)
TOKEN_REVOKE = "token_revoke"
DICOMWEB_QUERY = "dicomweb_query"  # a QIDO-RS search (user "token:NAME" for an API token)
DICOMWEB_RETRIEVE = "dicomweb_retrieve"  # a WADO-RS retrieval of a study, series, instance or metadata
VIEW_SERIES = "view_series"  # a series opened in the image viewer (its images drawn for a staff member)
# operations (pacsindex.ops)
INDEX_SCHEDULE = "index_schedule"  # an admin paused, resumed or changed the indexing schedule
PURGE = "purge"  # entries older than the retention ages removed, with how many of each
ACCESS_REPORT = "access_report"  # an admin made a patient's access report (POPIA s23)
AUDIT_EXPORT = "audit_export"  # an admin exported the audit log for a date range
BACKUP = "backup"  # a backup of the index and share store was written (or restored)
SHARE_UNLOCK = "share_unlock"  # an admin lifted a share link's passcode lockout
PRACTICE_SETTINGS = "practice_settings"  # an admin changed the practice details recipients see
ACTIONS = (
    SIGNIN,
    SIGNIN_FAILED,
    SIGNOUT,
    SEARCH,
    OPEN_SERIES,
    OPEN_STUDY,
    INDEX_START,
    INDEX_STOP,
    USER_ADD,
    USER_UPDATE,
    SHARE_CREATE,
    SHARE_REVOKE,
    SHARE_ACCESS,
    NAS_SETTINGS,
    NAS_TEST,
    ORTHANC_SETTINGS,
    ORTHANC_TEST,
    ORTHANC_SEND,
    TOKEN_CREATE,
    TOKEN_REVOKE,
    DICOMWEB_QUERY,
    DICOMWEB_RETRIEVE,
    VIEW_SERIES,
    INDEX_SCHEDULE,
    PURGE,
    ACCESS_REPORT,
    AUDIT_EXPORT,
    BACKUP,
    SHARE_UNLOCK,
    PRACTICE_SETTINGS,
)

MAX_PAGE = 500
QUICK_WRITE_MS = 300
REFUSAL_WINDOW_S = 3600  # identical refusals of an unauthenticated caller within this share one row
_AGGREGATED = ("not_found", "expired", "revoked", "limited")  # refusals nobody can bound; passcode tries

_Row = tuple[str, str | None, str | None, str, str | None, bool]  # ..., aggregate: add to a recent twin


def aggregated(user: str | None, detail: dict[str, Any]) -> bool:
    """Whether an entry is a refusal of someone not signed in (a made-up share link, say): those add to
    the count of an identical recent entry instead of growing the log without bound."""
    return user is None and detail.get("outcome", None) in _AGGREGATED


class AuditLog:
    def __init__(
        self, db_path: str | os.PathLike[str], *, clock: Clock = time.time, repeat_s: float = 120.0
    ) -> None:
        self.db_path = db_path
        self.clock = clock
        self.repeat_s = repeat_s
        self._recent: dict[tuple[str | None, str, str], float] = {}
        self._lock = threading.Lock()
        self._backlog: list[_Row] = []
        self._flusher: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def record(self, action: str, user: str | None, client: str | None = None, **detail: Any) -> bool:
        """Write one entry; False when it repeats one written less than `repeat_s` seconds ago.

        An indexing run holds the index's write lock for a moment at a time; if that keeps this entry
        waiting for more than 0.3 s, it is queued and written by a background thread right after, so
        a search never waits on indexing. Entries are never dropped."""
        now = self.clock()
        text = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str) if detail else None
        key = (user, action, text or "")
        aggregate = aggregated(user, detail)
        with self._lock:
            last = self._recent.get(key)
            if not aggregate and last is not None and now - last < self.repeat_s:
                return False
            if len(self._recent) > 10_000:
                self._recent = {k: t for k, t in self._recent.items() if now - t < self.repeat_s}
            self._recent[key] = now
        row = (
            iso_utc(now),
            user,
            client,
            action,
            text,
            aggregate,
        )
        with self._lock:
            queued = bool(self._backlog)
        try:
            if queued or not self._write([row], timeout_ms=QUICK_WRITE_MS):
                self._defer(row)
        except StoreError:
            with self._lock:
                self._recent.pop(key, None)
            raise
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until queued entries are written; True when none are left."""
        return self._idle.wait(timeout)

    def _write(self, rows: list[_Row], timeout_ms: int) -> bool:
        """True once written; False if the database stayed locked for `timeout_ms`."""
        conn = store.connect(self.db_path)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
            conn.execute("BEGIN IMMEDIATE")
            for at, user, client, action, text, aggregate in rows:
                if aggregate:
                    since = datetime.fromisoformat(at).timestamp() - REFUSAL_WINDOW_S
                    updated = conn.execute(
                        """UPDATE audit SET repeats = repeats + 1, last_at = ? WHERE id = (
                               SELECT id FROM audit WHERE at >= ? AND action = ? AND user_name IS NULL
                               AND client IS ? AND detail IS ? ORDER BY id DESC LIMIT 1)""",
                        (at, _iso(since), action, client, text),
                    )
                    if updated.rowcount:
                        continue
                conn.execute(
                    "INSERT INTO audit (at, user_name, client, action, detail) VALUES (?, ?, ?, ?, ?)",
                    (at, user, client, action, text),
                )
            conn.execute("COMMIT")
            return True
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if "locked" in str(exc) or "busy" in str(exc):
                return False
            raise StoreError(f"cannot write the audit log: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the audit log: {exc}") from exc
        finally:
            conn.close()

    def _defer(self, row: _Row) -> None:
        with self._lock:
            self._backlog.append(row)
            self._idle.clear()
            if self._flusher is None or not self._flusher.is_alive():
                self._flusher = threading.Thread(target=self._flush_backlog, name="audit-writer", daemon=True)
                self._flusher.start()

    def _flush_backlog(self) -> None:
        while True:
            with self._lock:
                rows = list(self._backlog)
                if not rows:
                    self._idle.set()
                    return
            try:
                written = self._write(rows, timeout_ms=30_000)
            except StoreError as exc:
                log.error("audit entries wait to be written: %s", exc)
                written = False
            if written:
                with self._lock:
                    del self._backlog[: len(rows)]
            else:
                time.sleep(0.5)

    def entries(
        self,
        *,
        user: str | None = None,
        action: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Newest first, optionally for one user and/or one action."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidQuery(f"limit must be between 1 and {MAX_PAGE}")
        if offset < 0:
            raise InvalidQuery("offset must not be negative")
        if action and action not in ACTIONS:
            raise InvalidQuery(f"action must be one of {', '.join(ACTIONS)}")
        where, params = [], []
        if user:
            where.append("user_name = ? COLLATE NOCASE")
            params.append(user)
        if action:
            where.append("action = ?")
            params.append(action)
        sql = "SELECT id, at, user_name, client, action, detail, repeats FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC, id DESC LIMIT ? OFFSET ?"
        conn = store.connect(self.db_path)
        try:
            rows = conn.execute(sql, (*params, limit, offset)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the audit log: {exc}") from exc
        finally:
            conn.close()
        return [_entry(r) for r in rows]


def _entry(row: sqlite3.Row) -> dict[str, Any]:
    detail = json.loads(row["detail"]) if row["detail"] else {}
    return {
        "id": row["id"],
        "at": row["at"],
        "user": row["user_name"],
        "client": row["client"],
        "action": row["action"],
        "detail": detail,
        "repeats": row["repeats"],
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


# -- reading for reports and exports (pacsindex.ops.reports) -----------------------------------------


def between(db_path: str | os.PathLike[str], since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
    """Every entry with since <= at < until (aware datetimes), oldest first, streamed."""
    conn = store.connect(db_path, create=False, readonly=True)
    try:
        rows = conn.execute(
            "SELECT id, at, user_name, client, action, detail, repeats FROM audit WHERE at >= ? AND at < ? "
            "ORDER BY at, id",
            (_iso(since.timestamp()), _iso(until.timestamp())),
        )
        for row in rows:
            yield _entry(row)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the audit log: {exc}") from exc
    finally:
        conn.close()


def mentioning(db_path: str | os.PathLike[str], needles: Sequence[str]) -> list[dict[str, Any]]:
    """Entries whose detail holds any of `needles` (SeriesKeys, share ids as `"share_id": N`), oldest
    first. A scan of the log: a report is rare, and the detail is JSON text."""
    if not needles:
        return []
    found: dict[int, dict[str, Any]] = {}
    conn = store.connect(db_path, create=False, readonly=True)
    try:
        for start in range(0, len(needles), 50):
            chunk = needles[start : start + 50]
            where = " OR ".join("instr(detail, ?) > 0" for _ in chunk)
            sql = f"SELECT id, at, user_name, client, action, detail, repeats FROM audit WHERE {where}"
            for row in conn.execute(sql, list(chunk)):
                found[row["id"]] = _entry(row)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the audit log: {exc}") from exc
    finally:
        conn.close()
    return sorted(found.values(), key=lambda e: (e["at"], e["id"]))
