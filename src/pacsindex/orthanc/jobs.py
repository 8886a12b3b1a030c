"""Sends to Orthanc in the background of a long-running process (the web service): each in a thread of its
own with an id to ask for its progress, one send per series at a time, the last KEEP finished ones kept
for the page to show. The send itself is `client.send_series`."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pacsindex.errors import NotFound, PacsIndexError
from pacsindex.orthanc.client import Connection, OrthancClient, SendProgress, send_series, series_files

__all__ = ["Finished", "SendJob", "SendJobs"]

log = logging.getLogger(__name__)


@dataclass
class SendJob:
    id: str
    SeriesKey: str
    started_by: str
    started_at: float
    state: str = "running"  # running, completed, failed
    progress: SendProgress | None = None
    error: str | None = None
    finished_at: float | None = None

    def snapshot(self) -> dict[str, Any]:
        p = self.progress or SendProgress(SeriesKey=self.SeriesKey, total=0)
        return {
            "id": self.id,
            "SeriesKey": self.SeriesKey,
            "started_by": self.started_by,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "state": self.state,
            "error": self.error,
            **{k: v for k, v in p.as_dict().items() if k != "SeriesKey"},
        }


Finished = Callable[[SendJob], None]


class SendJobs:
    """Sends running in background threads, each with an id to ask for its progress. One send per series
    at a time: asking again while one runs gives the running one."""

    KEEP = 200  # finished sends remembered for the page to show

    def __init__(
        self, db: str | os.PathLike[str], *, settings: Any = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._jobs: dict[str, SendJob] = {}
        self._lock = threading.Lock()

    def start(
        self, key: str, conn: Connection, user: str, *, on_done: Finished | None = None
    ) -> tuple[SendJob, bool]:
        """(the job, True if it was started now; False if that series was already being sent)."""
        series, _files = series_files(self.db, key)  # NotFound now, not in the thread
        key = series["SeriesKey"]
        with self._lock:
            for job in self._jobs.values():
                if job.SeriesKey == key and job.state == "running":
                    return job, False
            job = SendJob(secrets.token_hex(8), key, user, self.clock())
            self._jobs[job.id] = job
            self._forget_old()
        threading.Thread(
            target=self._run, args=(job, conn, on_done), name=f"orthanc-send-{job.id}", daemon=True
        ).start()
        return job, True

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFound("no such send to Orthanc (the server may have restarted)")
            return job.snapshot()

    def wait(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job's snapshot once it has finished, or as it is after `timeout` seconds (for shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.get(job_id)
            if snap["state"] != "running" or time.monotonic() >= deadline:
                return snap
            time.sleep(0.05)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state != "running"]
        for job in sorted(finished, key=lambda j: j.started_at)[: max(0, len(finished) - self.KEEP)]:
            del self._jobs[job.id]

    def _set(self, job: SendJob, **values: Any) -> None:
        with self._lock:
            for name, value in values.items():
                setattr(job, name, value)

    def _run(self, job: SendJob, conn: Connection, on_done: Finished | None) -> None:
        try:
            with OrthancClient(conn) as client:
                final = send_series(
                    self.db,
                    job.SeriesKey,
                    client,
                    on_progress=lambda p: self._set(job, progress=p),
                    settings=self.settings,
                )
            self._set(job, progress=final, state="completed", finished_at=self.clock())
        except PacsIndexError as exc:
            self._set(job, state="failed", error=str(exc), finished_at=self.clock())
        except Exception as exc:  # a thread must not die silently: the page would poll forever
            log.error("send to Orthanc %s failed", job.id, exc_info=exc)
            self._set(
                job,
                state="failed",
                error="internal error; the server log has the details",
                finished_at=self.clock(),
            )
        if on_done is not None:
            try:
                on_done(job)
            except Exception as exc:
                log.error("after the send to Orthanc %s", job.id, exc_info=exc)
