"""Progress of an indexing run: the frozen event the scanner emits, the rate/ETA estimate, and the
status file (`index_status.json`) that is rewritten atomically so another process can always read it whole.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pacsindex.index.clock import shown

STATUS_KEYS = (
    "enumerated_files",
    "files_processed",
    "files_read",
    "files_unchanged",
    "files_removed",
    "series_count",
    "errors",
    "non_dicom",
    "running",
    "started_at",
    "last_updated",
)


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a run. `enumeration_done` says whether `enumerated_files` is the final total."""

    run_id: int
    roots: tuple[str, ...]
    state: str  # running, completed, cancelled, failed, limited
    enumerated_files: int = 0
    enumeration_done: bool = False
    files_processed: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    files_from_records: int = 0  # indexed from DICOMDIR or catalog records without opening the file
    folders_listed: int = 0
    folders_kept: int = 0  # folders a quick pass did not list: unchanged since they were indexed
    series_count: int = 0
    series_filling: int = 0  # of them, still being indexed (the survey read one file, the others come later)
    errors: int = 0
    non_dicom: int = 0
    started_at: datetime | None = None
    last_updated: datetime | None = None
    files_per_s: float = 0.0
    eta_s: float | None = None
    message: str | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def percent(self) -> float | None:
        if not self.enumeration_done:
            return None
        if self.enumerated_files == 0:
            return 100.0
        return min(100.0, 100.0 * self.files_processed / self.enumerated_files)

    def as_status(self, tz: ZoneInfo | None = None) -> dict[str, Any]:
        """The status-file keys, plus rate, ETA, state and roots; times ISO 8601 with their offset."""

        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["running"] = self.running
        data["started_at"] = shown(self.started_at, tz)
        data["last_updated"] = shown(self.last_updated, tz)
        data["roots"] = list(self.roots)
        data["percent"] = None if self.percent is None else round(self.percent, 1)
        data["files_per_s"] = round(self.files_per_s, 1)
        data["eta_s"] = None if self.eta_s is None else round(self.eta_s, 1)
        return data


@dataclass
class RateMeter:
    """Files/s over a sliding window of recent seconds, so the ETA follows the current speed."""

    window_s: float = 10.0
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, done: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()
        t0, d0 = self._samples[0]
        return (done - d0) / (now - t0) if now > t0 else 0.0


class StatusFile:
    """Writes the run's status as JSON, atomically (write a temporary file, then replace), so a reader never
    sees half a file. `submit` hands a snapshot to a background thread that always writes the newest one, so
    a fast run is not slowed down by the disk; `close` writes the last snapshot and stops the thread."""

    def __init__(self, path: str | os.PathLike[str], tz: ZoneInfo | None = None) -> None:
        self.path = Path(path)
        self.tz = tz
        self._latest: Progress | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, progress: Progress) -> None:
        data = progress.as_status(self.tz)
        fd, tmp = tempfile.mkstemp(prefix=".status-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, ensure_ascii=False, indent=2)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def submit(self, progress: Progress) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="status-file", daemon=True)
                self._thread.start()
            self._latest = progress
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._latest is None and not self._closed:
                    self._cond.wait()
                latest, self._latest = self._latest, None
                if latest is None:
                    return
            try:
                self.write(latest)
            except OSError as exc:  # a full disk must not stop the run; close() reports it
                self._error = exc

    def close(self, final: Progress | None = None) -> None:
        """Stop the writer thread after writing `final` (or the last submitted snapshot)."""
        with self._cond:
            if final is not None:
                self._latest = final
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        elif final is not None:
            self.write(final)
