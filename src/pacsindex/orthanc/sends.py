"""Sends to Orthanc in the background, kept in the index (`orthanc_sends`, migration 6) so they outlive the
process: each send has an id to watch it by, can be cancelled, and one that a shutdown or a crash stopped
is resumed by the next start from the first file it had not done.

Why no instance is sent twice: the progress (files done, sent, skipped, failed) is written after every
file, a stop takes effect only between files, and a resumed send starts after the files already done and
still asks Orthanc which instances it holds before uploading anything (`client.send_series`).

States: running → completed | failed | cancelled (by a user) | interrupted (the service stopped; resumed
at the next start). The web layer turns the events (`on_event`) into audit entries; this module knows
nothing of HTTP or of the audit log.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pacsindex.errors import Conflict, NotFound, PacsIndexError, StoreError
from pacsindex.index import store
from pacsindex.orthanc.client import (
    Connection,
    Failure,
    OrthancClient,
    SendProgress,
    send_series,
    series_files,
)

__all__ = ["FINISHED", "SendJob", "SendJobs"]

log = logging.getLogger(__name__)

FINISHED = ("completed", "failed", "cancelled")
RESUMABLE = ("running", "interrupted")


@dataclass
class SendJob:
    id: str
    SeriesKey: str
    orthanc_url: str
    started_by: str
    client: str | None
    started_at: float
    state: str = "running"
    progress: SendProgress | None = None
    error: str | None = None
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    by_user: bool = False  # cancelled by a user, not stopped by a shutdown

    def snapshot(self) -> dict[str, Any]:
        p = self.progress or SendProgress(SeriesKey=self.SeriesKey, total=0)
        return {
            "id": self.id,
            "SeriesKey": self.SeriesKey,
            "orthanc_url": self.orthanc_url,
            "started_by": self.started_by,
            "client": self.client,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "state": self.state,
            "error": self.error,
            **{k: v for k, v in p.as_dict().items() if k != "SeriesKey"},
        }


Event = Callable[[dict[str, Any], str], None]  # (snapshot, what happened: started, resumed, the end state)


class SendJobs:
    """The sends of the index at `db`. One send per series at a time: asking again while one runs gives
    the running one."""

    def __init__(
        self,
        db: str | os.PathLike[str],
        *,
        settings: Any = None,
        clock: Callable[[], float] = time.time,
        on_event: Event | None = None,
        on_progress: Callable[[SendJob], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.on_event = on_event
        self.on_progress = on_progress  # an observer called after each file (tests pause a send here)
        self._running: dict[str, tuple[SendJob, threading.Thread]] = {}
        self._lock = threading.Lock()

    # -- control ---------------------------------------------------------------------------------------
    def start(
        self, key: str, conn: Connection, user: str, client: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """(the send, True if it was started now; False if that series was already being sent)."""
        series, _files = series_files(self.db, key)  # NotFound now, not in the thread
        key = series["SeriesKey"]
        with self._lock:
            for job, _thread in self._running.values():
                if job.SeriesKey == key and job.state == "running":
                    return job.snapshot(), False
            job = SendJob(secrets.token_hex(8), key, conn.url, user, client, self.clock())
            self._save(job, insert=True)
            self._launch(job, conn, "started")
        return job.snapshot(), True

    def cancel(self, send_id: str) -> dict[str, Any]:
        """Stop a running send after the file in hand; Conflict when it is not running."""
        with self._lock:
            entry = self._running.get(send_id)
        if entry is None:
            self.get(send_id)  # NotFound for an unknown id
            raise Conflict("that send is not running")
        job, thread = entry
        job.by_user = True
        job.cancel.set()
        thread.join(60)
        return self.get(send_id)

    def resume(self, conn: Connection | None) -> list[str]:
        """Start again the sends a stop or a crash left unfinished; their ids. With no Orthanc set up, or a
        different one than they were sent to, they fail with the reason."""
        try:
            db = store.connect(self.db)
            try:
                rows = db.execute(
                    "SELECT * FROM orthanc_sends WHERE state IN (?, ?) ORDER BY started_at", RESUMABLE
                ).fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the sends to Orthanc: {exc}") from exc
        resumed = []
        for row in rows:
            job = _job_from(row)
            with self._lock:
                if job.id in self._running:
                    continue
                if conn is None or conn.url != job.orthanc_url:
                    job.state, job.finished_at = "failed", self.clock()
                    job.error = "not resumed: Orthanc's address was changed or removed since it was started"
                    self._save(job)
                    self._event(job, job.state)
                    continue
                job.state, job.error = "running", None
                self._save(job)
                self._launch(job, conn, "resumed")
            resumed.append(job.id)
        return resumed

    def shutdown(self, timeout: float = 30.0) -> list[str]:
        """Stop every running send between files (each resumes at the next start); their ids."""
        with self._lock:
            entries = list(self._running.values())
        for job, _thread in entries:
            job.cancel.set()
        deadline = time.monotonic() + timeout
        for _job, thread in entries:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [job.id for job, _thread in entries]

    def wait(self, send_id: str, timeout: float) -> dict[str, Any]:
        """The send once it has ended, or as it is after `timeout` seconds."""
        with self._lock:
            entry = self._running.get(send_id)
        if entry is not None:
            entry[1].join(timeout)
        return self.get(send_id)

    # -- reading ---------------------------------------------------------------------------------------
    def get(self, send_id: str) -> dict[str, Any]:
        with self._lock:
            entry = self._running.get(send_id)
            if entry is not None:
                return entry[0].snapshot()
        try:
            db = store.connect(self.db)
            try:
                row = db.execute("SELECT * FROM orthanc_sends WHERE id = ?", (send_id,)).fetchone()
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the sends to Orthanc: {exc}") from exc
        if row is None:
            raise NotFound("no such send to Orthanc")
        return _job_from(row).snapshot()

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        try:
            db = store.connect(self.db)
            try:
                rows = db.execute(
                    "SELECT * FROM orthanc_sends ORDER BY started_at DESC LIMIT ?", (limit,)
                ).fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the sends to Orthanc: {exc}") from exc
        return [self.get(r["id"]) if r["id"] in self._running else _job_from(r).snapshot() for r in rows]

    # -- the work --------------------------------------------------------------------------------------
    def _launch(self, job: SendJob, conn: Connection, event: str) -> None:
        thread = threading.Thread(
            target=self._run, args=(job, conn), name=f"orthanc-send-{job.id}", daemon=True
        )
        self._running[job.id] = (job, thread)
        self._event(job, event)
        thread.start()

    def _run(self, job: SendJob, conn: Connection) -> None:
        def progressed(p: SendProgress) -> None:
            job.progress = p
            self._save(job)
            if self.on_progress is not None:
                self.on_progress(job)

        try:
            with OrthancClient(conn) as client:
                final = send_series(
                    self.db,
                    job.SeriesKey,
                    client,
                    on_progress=progressed,
                    cancel=job.cancel,
                    settings=self.settings,
                    resume=job.progress,
                )
            job.progress = final
            if job.cancel.is_set() and final.done < final.total:
                job.state = "cancelled" if job.by_user else "interrupted"
            else:
                job.state = "completed"
        except PacsIndexError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # a thread must not die silently: the page would poll forever
            log.error("send to Orthanc %s failed", job.id, exc_info=exc)
            job.state, job.error = "failed", "internal error; the server log has the details"
        if job.state != "interrupted":
            job.finished_at = self.clock()
        try:
            self._save(job)
        except StoreError as exc:
            log.error("cannot record the end of send %s: %s", job.id, exc)
        with self._lock:
            self._running.pop(job.id, None)
        self._event(job, "stopped" if job.state == "interrupted" else job.state)

    def _event(self, job: SendJob, what: str) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(job.snapshot(), what)
        except Exception as exc:
            log.error("after the send to Orthanc %s", job.id, exc_info=exc)

    def _save(self, job: SendJob, *, insert: bool = False) -> None:
        p = job.progress or SendProgress(SeriesKey=job.SeriesKey, total=0)
        failures = json.dumps([f.__dict__ for f in p.failures], ensure_ascii=False)
        try:
            db = store.connect(self.db)
            try:
                if insert:
                    db.execute(
                        """INSERT INTO orthanc_sends (id, SeriesKey, orthanc_url, started_by, client, state,
                           started_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                        (
                            job.id,
                            job.SeriesKey,
                            job.orthanc_url,
                            job.started_by,
                            job.client,
                            job.state,
                            job.started_at,
                        ),
                    )
                db.execute(
                    """UPDATE orthanc_sends SET state = ?, finished_at = ?, total = ?, done = ?, sent = ?,
                       skipped = ?, failed = ?, failures = ?, error = ? WHERE id = ?""",
                    (
                        job.state,
                        job.finished_at,
                        p.total,
                        p.done,
                        p.sent,
                        p.skipped,
                        p.failed,
                        failures,
                        job.error,
                        job.id,
                    ),
                )
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record the send to Orthanc: {exc}") from exc


def _job_from(row: sqlite3.Row) -> SendJob:
    failures = tuple(Failure(**f) for f in json.loads(row["failures"] or "[]"))
    progress = SendProgress(
        SeriesKey=row["SeriesKey"],
        total=row["total"],
        done=row["done"],
        sent=row["sent"],
        skipped=row["skipped"],
        failed=row["failed"],
        failures=failures,
    )
    return SendJob(
        id=row["id"],
        SeriesKey=row["SeriesKey"],
        orthanc_url=row["orthanc_url"],
        started_by=row["started_by"],
        client=row["client"],
        started_at=row["started_at"],
        state=row["state"],
        progress=progress,
        error=row["error"],
        finished_at=row["finished_at"],
    )
