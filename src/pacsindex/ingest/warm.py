"""The header-reading workers a long-running service (`pacsindex serve`) keeps between indexing runs:
`WarmPool`, started in the background when the service starts, lent to one run at a time, closed when the
service stops. A run inside the service so starts reading at once instead of starting interpreters first;
`pacsindex index` keeps a pool of its own (`ingest.workers.WorkerPool`), which this one extends.

What a lent pool keeps from a run's own: every job carries its reader (a local path, SMB with the
credentials of that run), so nothing about a source is fixed when the workers start; a worker that dies or
sticks is replaced exactly as in a run's own pool (`ingest.scan`), and the replacement stays for the next
run. Given back, the pool holds none of the run's jobs: those not started are cancelled, and when some are
still being read (a run that failed or was interrupted) the workers are replaced, so the next run never
waits behind them. Idle workers block on the pool's queue; each watches its parent and ends with it. When
the NAS settings change (`refresh`), the workers are replaced, so their NAS connections, logged in with the
old account, end with them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

from pacsindex.dicom.headers import FileResult
from pacsindex.ingest.workers import JobPart, WorkerPool, _bare_main, ping
from pacsindex.sources.files import Reader

__all__ = ["WarmPool"]

log = logging.getLogger(__name__)


class WarmPool(WorkerPool):
    """`workers` header-reading processes owned by the service. `start()` returns at once (the processes
    start in the background); `lend()` gives the pool to one run, which hands it back with `release()`;
    `close()` stops the processes. With `in_process` (the settings say `workers = 1`) there is nothing to
    keep: runs read in the service's process."""

    def __init__(self, workers: int, in_process: bool = False) -> None:
        # No WorkerPool.__init__: no executor (nor its pipes) before start(), so building the service
        # starts nothing.
        self.workers = max(1, workers)
        self.in_process = in_process  # the settings ask to read in the service's process: nothing to keep
        self.file_seconds = 60.0
        self._lock = threading.Lock()  # guards _state and _lent
        self._state = "new"  # new -> open -> closed
        self._lent = False
        self._stale = False  # the NAS settings changed while lent: replace the workers when given back
        self._jobs_lock = threading.Lock()
        self._jobs: set[Future[list[list[FileResult]]]] = set()  # the borrower's jobs not yet done

    # -- the service's lifespan ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker processes without waiting for them."""
        with self._lock:
            if self._state != "new" or self.in_process:
                return
            self._executor = self._new()
            self._state = "open"
        threading.Thread(target=self._warm, name="pacsindex-warm-readers", daemon=True).start()

    def close(self) -> None:
        """Stop the workers (the service is stopping); a run still holding the pool fails its next read."""
        with self._lock:
            was, self._state = self._state, "closed"
            lent = self._lent
        if was == "open":
            self.shutdown(kill=lent)  # idle workers end at once; a read under way only if a run holds it

    def refresh(self) -> None:
        """The NAS settings changed: each worker's connections to the NAS (logged in with the old account,
        or to the old address) end with the worker. Idle workers are replaced now; a pool lent to a run,
        when the run gives it back (the run goes on with the settings it started with)."""
        with self._lock:
            if self._state != "open":
                return
            if self._lent:
                self._stale = True
                return
            self._lent = True  # no run borrows the pool while its workers are replaced
        try:
            self.replace()
        finally:
            with self._lock:
                self._lent = False

    def pids(self) -> list[int]:
        """The worker processes running now (for tests and the bench)."""
        executor = getattr(self, "_executor", None)
        procs = (getattr(executor, "_processes", None) or {}).values()
        return sorted(p.pid for p in procs if p.pid is not None and p.is_alive())

    # -- lending ---------------------------------------------------------------------------------------
    def lend(self, workers: int, file_seconds: float, in_process: bool = False) -> WarmPool | None:
        """This pool for a run that wants `workers` readers, each file's read under `file_seconds`; None
        when it cannot be had (not started, closed, another size, or lent already): the run makes its own."""
        with self._lock:
            if self._state != "open" or self._lent or workers != self.workers or in_process:
                return None
            self._lent = True
            self.file_seconds = file_seconds
        if getattr(self._executor, "_broken", False):  # a worker died while idle (the OOM killer, a kill)
            log.info("a header-reading process had ended between runs; starting new ones")
            self.replace()
        return self

    def submit(self, reader: Reader, parts: Sequence[JobPart]) -> Future[list[list[FileResult]]]:
        fut = super().submit(reader, parts)
        with self._jobs_lock:
            self._jobs.add(fut)
        fut.add_done_callback(self._done)
        return fut

    def _done(self, fut: Future[list[list[FileResult]]]) -> None:
        with self._jobs_lock:
            self._jobs.discard(fut)

    def release(self, kill: bool = False) -> None:
        """The run is over: its jobs not started are cancelled; with `kill`, or when some are still being
        read, the workers are replaced, so the next run finds the pool idle and whole."""
        with self._jobs_lock:
            left, self._jobs = list(self._jobs), set()
        if not kill and not any(fut.running() for fut in left):
            for fut in left:
                fut.cancel()
            kill = any(not fut.done() for fut in left)  # one started between the look and the cancel
        else:
            kill = True  # replace() cancels the queued jobs itself (see WorkerPool.shutdown)
        with self._lock:
            stale, self._stale = self._stale, False
        if kill or stale:
            self.replace(kill=kill)
        with self._lock:
            self._lent = False

    def replace(self, kill: bool = False) -> None:
        with self._lock:
            closed = self._state == "closed"
        if closed:  # the service is stopping: no new processes
            self.shutdown(kill)
            return
        super().replace(kill)
        self._warm()

    def _warm(self) -> None:
        """Start every worker now rather than on the next jobs: a spawn pool starts a process per job sent
        while none is idle, up to `workers`. Spawning takes a few ms a process here; the processes import
        in the background (a run that comes first queues its jobs; they start as the workers do)."""
        executor = self._executor
        try:
            with _bare_main():
                for _ in range(self.workers):
                    executor.submit(ping)
        except (RuntimeError, BrokenProcessPool):  # closed or replaced meanwhile: nothing to warm
            pass
