"""Indexing in the background of a long-running process (the web service): one run at a time, started,
stopped and watched from other threads.

The run itself is `scan.Run` in a thread of its own; it is the index's one writer. Its progress callback
keeps the latest `Progress` in memory (one reference assignment, no lock needed to read it) and hands it to
the status file's writer thread, so `status()` answers from memory in microseconds however hard the run is
working. When this process has not run anything yet, `status()` shows the status file (a run by
`pacsindex index` in another process writes it too) or, failing that, the last run recorded in the index.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pacsindex.errors import Conflict, IndexNotFound, InvalidQuery, PacsIndexError, StoreError
from pacsindex.index import store
from pacsindex.index.clock import shown, utcnow
from pacsindex.index.locking import WriterLock
from pacsindex.index.sa.samatch import Tables
from pacsindex.ingest.progress import STATUS_KEYS, Progress, StatusFile
from pacsindex.ingest.scan import Run, ScanOptions
from pacsindex.ingest.warm import WarmPool
from pacsindex.sources.files import Source

log = logging.getLogger(__name__)

SourceFactory = Callable[[str], Source]
MAX_ROOTS = 32
MAX_ROOT_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class _Current:
    run: Run
    thread: threading.Thread
    cancel: threading.Event
    started_by: str | None


class IndexJobs:
    """Starts, stops and reports indexing runs into the index at `db_path`."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        source_for: SourceFactory,
        *,
        options: ScanOptions | None = None,
        status_path: str | os.PathLike[str] | None = None,
        tz: ZoneInfo | None = None,
        tables: Tables | None = None,
        pool: WarmPool | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.pool = pool  # header readers kept warm by the service, lent to each run (None: each its own)
        self.tables = tables  # from the settings file's [medical_aids] / [hospitals]: every run uses them
        self.source_for = source_for
        self.options = options or ScanOptions()
        self.status_path = Path(status_path) if status_path is not None else None
        self.tz = tz
        self._lock = threading.Lock()
        self._current: _Current | None = None
        self._latest: Progress | None = None
        self._started_by: str | None = None
        self._failure: str | None = None
        self._idle_series: tuple[int, int] | None = None  # series, and of them still being indexed

    def nas_changed(self) -> None:
        """The NAS settings were saved or forgotten: the warm readers' connections made with the old ones
        end (the service's own are closed by the caller, `sources.smb.close_connections`)."""
        if self.pool is not None:
            self.pool.refresh()

    # -- control ---------------------------------------------------------------------------------------
    def start(
        self, roots: Sequence[str], started_by: str | None = None, *, options: ScanOptions | None = None
    ) -> dict[str, Any]:
        """Check the roots can be read, then index them in a background thread. Conflict while a run goes.
        `options` replace the usual ones for this run (the nightly pass retries files that failed)."""
        roots = [check_root(r) for r in roots]
        if not roots:
            raise InvalidQuery("nothing to index: no roots given and none configured")
        if len(roots) > MAX_ROOTS:
            raise InvalidQuery(f"at most {MAX_ROOTS} roots at a time")
        with self._lock:
            if self.running:
                raise Conflict("an indexing run is already going; stop it or wait for it to finish")
            sources = [self.source_for(r) for r in roots]
            for source in sources:
                source.check()
            with WriterLock(self.db_path):  # fail now, not in the thread, if `pacsindex index` is running
                pass
            cancel = threading.Event()
            status_file = StatusFile(self.status_path, self.tz) if self.status_path is not None else None

            def on_progress(progress: Progress) -> None:
                self._latest = progress
                if status_file is not None:
                    status_file.submit(progress)  # written by its own thread: the run never waits on it

            run = Run(
                self.db_path,
                sources,
                options or self.options,
                on_progress=on_progress,
                cancel=cancel,
                tables=self.tables,
                pool=self.pool,
            )
            thread = threading.Thread(
                target=self._run, args=(run, status_file), name="pacsindex-index", daemon=True
            )
            self._current = _Current(run, thread, cancel, started_by)
            self._latest = Progress(
                run_id=0,
                roots=tuple(s.label for s in sources),
                state="running",
                started_at=utcnow(),
                last_updated=utcnow(),
            )
            self._started_by = started_by
            self._failure = None
            thread.start()
        return self.status()

    def stop(self) -> dict[str, Any]:
        """Ask the run to stop after the files in hand; Conflict when none is going."""
        current = self._current
        if current is None or not current.thread.is_alive():
            raise Conflict("no indexing run is going")
        current.cancel.set()
        return self.status()

    @property
    def running(self) -> bool:
        current = self._current
        return current is not None and current.thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the current run to end; True if none is going any more."""
        current = self._current
        if current is None:
            return True
        current.thread.join(timeout)
        return not current.thread.is_alive()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the current run (it resumes next time) and wait for it."""
        current = self._current
        if current is not None and current.thread.is_alive():
            current.cancel.set()
            current.thread.join(timeout)

    def _run(self, run: Run, status_file: StatusFile | None) -> None:
        try:
            run.run()
        except PacsIndexError as exc:
            self._failed(str(exc))
        except Exception as exc:  # the thread must leave a reason behind, never die silently
            log.exception("indexing run failed")
            self._failed(f"indexing failed: {exc.__class__.__name__}")
        finally:
            self._idle_series = None
            if status_file is not None:
                try:
                    status_file.close()
                except OSError as exc:
                    log.warning("cannot write the status file: %s", exc.strerror or exc)

    def _failed(self, message: str) -> None:
        self._failure = message
        latest = self._latest
        if latest is not None and latest.state == "running":
            self._latest = replace(latest, state="failed", message=message, last_updated=utcnow())

    # -- status ----------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The status-file keys plus state, percent, files/s, ETA, roots and who started the run."""
        latest = self._latest
        if latest is not None:
            data = latest.as_status(self.tz)
            data["started_by"] = self._started_by
            if not self.running and data["running"]:
                # the thread ended without a last event (it failed before the run began)
                data.update(running=False, state="failed", message=self._failure or "indexing stopped")
            return data
        return self._idle_status()

    def _idle_status(self) -> dict[str, Any]:
        data = self._from_status_file() or self._from_last_run()
        data.setdefault("started_by", None)
        return data

    def _from_status_file(self) -> dict[str, Any] | None:
        if self.status_path is None:
            return None
        try:
            data = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not all(k in data for k in STATUS_KEYS):
            return None
        if data.get("running") and not self._writer_busy():
            data.update(
                running=False,
                state="interrupted",
                eta_s=None,
                files_per_s=0.0,
                message="the run that wrote this status stopped without finishing",
            )
        return data

    def _writer_busy(self) -> bool:
        try:
            with WriterLock(self.db_path):
                return False
        except Conflict:
            return True
        except StoreError:
            return False

    def _from_last_run(self) -> dict[str, Any]:
        data: dict[str, Any] = dict.fromkeys(STATUS_KEYS, 0)
        data.update(
            run_id=None,
            roots=[],
            state="idle",
            running=False,
            enumeration_done=False,
            started_at=None,
            last_updated=None,
            files_per_s=0.0,
            eta_s=None,
            percent=None,
            message=None,
        )
        try:
            with store.reading(self.db_path) as conn:
                row = conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
                if self._idle_series is None:
                    self._idle_series = store.series_count(conn), store.filling_count(conn)
        except (IndexNotFound, StoreError, sqlite3.Error):
            return data
        data["series_count"], data["series_filling"] = self._idle_series
        if row is not None:
            for key in store.RUN_COUNTERS:
                data[key] = row[key]
            data.update(
                run_id=row["id"],
                roots=json.loads(row["roots"]),
                state="interrupted" if row["status"] == "running" else row["status"],
                enumeration_done=True,
                started_at=_show(row["started_at"], self.tz),
                last_updated=_show(row["finished_at"] or row["started_at"], self.tz),
                message=row["message"],
            )
            if data["state"] == "completed":
                data["percent"] = 100.0
        return data


def check_root(root: Any) -> str:
    if not isinstance(root, str) or not root.strip():
        raise InvalidQuery("a root must be a folder path such as /mnt/pacs or \\\\nas\\dicom")
    if len(root) > MAX_ROOT_LENGTH or "\x00" in root:
        raise InvalidQuery("that root is not a usable path")
    return root.strip()


def _show(text: str | None, tz: ZoneInfo | None) -> str | None:
    if not text:
        return None
    try:
        return shown(text, tz)
    except ValueError:
        return text
