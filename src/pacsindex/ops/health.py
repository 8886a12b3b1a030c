"""`GET /healthz` for the practice's monitoring, and the warnings the Indexing page shows.

No patient data and no session: whether the index answers, whether each indexing root (the NAS) can be
reached (`Source.check()`, never a listing), the last run's time and state, and the free space of the data
directory's disk. Root checks are cached for `CACHE_S` seconds so a monitor polling every few seconds does
not keep the NAS busy. Root paths themselves are not shown (they may name a patient-bearing share path):
only how many there are and how many answered.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from pacsindex.config.settings import Settings
from pacsindex.errors import PacsIndexError
from pacsindex.index import store
from pacsindex.sources.files import Source

__all__ = ["Health", "disk_warning"]

CACHE_S = 30.0


def disk_warning(settings: Settings) -> tuple[dict[str, Any], str | None]:
    """The data directory's disk (total, free, percent free) and a warning when it is nearly full."""
    try:
        usage = shutil.disk_usage(settings.data_path)
    except OSError as exc:
        return {"error": exc.strerror or str(exc)}, "cannot see the data directory's disk"
    percent = 100.0 * usage.free / usage.total if usage.total else 0.0
    disk = {"total_bytes": usage.total, "free_bytes": usage.free, "free_percent": round(percent, 1)}
    if percent < settings.disk_warning_percent:
        gib = usage.free / 2**30
        return disk, (
            f"the data directory's disk is nearly full: {gib:.1f} GiB ({percent:.0f}%) free; the index and "
            "the audit log need room to grow"
        )
    return disk, None


class Health:
    def __init__(
        self,
        settings: Settings,
        roots: Callable[[], list[str]],
        source_for: Callable[[str], Source],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.roots = roots
        self.source_for = source_for
        self.clock = clock
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def _nas(self) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            if self._cached is not None and now - self._cached[0] < CACHE_S:
                return self._cached[1]
        roots = self.roots()
        reachable = 0
        for root in roots:
            try:
                self.source_for(root).check()
                reachable += 1
            except (PacsIndexError, OSError):
                pass
        result = {"roots": len(roots), "reachable": reachable, "ok": reachable == len(roots)}
        with self._lock:
            self._cached = (now, result)
        return result

    def check(self) -> dict[str, Any]:
        index: dict[str, Any] = {"ok": False, "last_run": None}
        try:
            with store.reading(self.settings.db) as conn:
                row = conn.execute(
                    "SELECT started_at, finished_at, status FROM runs ORDER BY id DESC LIMIT 1"
                ).fetchone()
            index["ok"] = True
            if row is not None:
                index["last_run"] = {
                    "started_at": row["started_at"],
                    "finished_at": row["finished_at"],
                    "state": row["status"],
                }
        except (PacsIndexError, sqlite3.Error) as exc:
            index["error"] = type(exc).__name__
        disk, warning = disk_warning(self.settings)
        nas = self._nas()
        ok = index["ok"] and nas["ok"] and warning is None
        return {"ok": ok, "index": index, "nas": nas, "disk": {**disk, "warning": warning is not None}}
