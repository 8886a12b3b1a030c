"""Progress of an indexing run: the frozen event the scanner emits, the rate/ETA estimate, and the
status file (`index_status.json`) that is rewritten atomically so another process can always read it whole.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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
    series_count: int = 0
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

        def show(ts: datetime | None) -> str | None:
            if ts is None:
                return None
            return (ts.astimezone(tz) if tz else ts).isoformat(timespec="seconds")

        data = asdict(self)
        data["running"] = self.running
        data["started_at"] = show(self.started_at)
        data["last_updated"] = show(self.last_updated)
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
    """Writes the run's status as JSON, atomically (write a temporary file, then replace)."""

    def __init__(self, path: str | os.PathLike[str], tz: ZoneInfo | None = None) -> None:
        self.path = Path(path)
        self.tz = tz

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
