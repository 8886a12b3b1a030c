"""What runs in the header-reading worker processes of an indexing run: `read_job` reads a job's files,
each under a time budget (a POSIX timer inside the worker; the run's watchdog elsewhere), and `InProcess`
runs jobs in the calling process when one worker is asked for; `WorkerPool` holds the processes and
replaces them when one dies or sticks. When to do that is the run's business (`ingest.scan`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from pacsindex.dicom.headers import FileResult, read_header
from pacsindex.sources.files import Entry, Reader

__all__ = [
    "WORKER_DIED",
    "InProcess",
    "JobPart",
    "WorkerPool",
    "init_worker",
    "overtime_reason",
    "ping",
    "read_batch",
    "read_job",
]

log = logging.getLogger(__name__)

WORKER_DIED = "the header reader's process died on this file (a crash or out of memory); it was skipped"
_in_worker = False
_main_lock = threading.Lock()  # _bare_main swaps a process-wide name: one spawning thread at a time


class _Overtime(BaseException):
    """Raised by the timer inside a worker when one file's read runs over its budget. A BaseException, so
    read_header's handler for corrupt files does not take it for one."""


def _overtime(signum: int, frame: object) -> None:
    raise _Overtime


def init_worker() -> None:
    global _in_worker
    # Ctrl-C goes to the whole process group; the parent stops the run cleanly, workers just finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    if hasattr(signal, "setitimer"):  # POSIX; on Windows the parent's watchdog bounds a read instead
        signal.signal(signal.SIGALRM, _overtime)
        _in_worker = True
    threading.Thread(target=_follow_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()


def _follow_parent(parent: int) -> None:
    """End this worker when the process that started it is gone (`kill -9` of `serve`, a crash): nobody
    would ever collect its results, and it would hold its memory until the machine restarts."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _read_one(path: str, opener: Callable[[str], Any], entry: Entry, seconds: float) -> FileResult:
    if not _in_worker:
        return read_header(path, opener, entry.size, entry.name)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)  # one shot: disarmed once it has fired
        try:
            return read_header(path, opener, entry.size, entry.name)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Overtime:
        return FileResult(path, "error", reason=overtime_reason(seconds))


def ping() -> int:
    """A job that only makes a worker start (and says which process it is): a pool warmed ahead of a run."""
    return os.getpid()


def overtime_reason(seconds: float) -> str:
    return f"reading the header took longer than {seconds:g} s; skipped"


JobPart = tuple[str, str, Sequence[Entry]]  # (folder, sep, some of its files)


def read_job(reader: Reader, parts: Sequence[JobPart], file_seconds: float = 60.0) -> list[list[FileResult]]:
    """Run in a worker process: read the headers of a job's files, some files of each of one or more
    folders; one result list per part. A reader that has `prefetch(paths) -> opener` (SMB: one round trip a
    file, many in flight) fetches the whole job at once. Each file's read gets `file_seconds`."""
    paths = [[folder + sep + e.name for e in entries] for folder, sep, entries in parts]
    prefetch = getattr(reader, "prefetch", None)
    opener = prefetch([p for part in paths for p in part]) if prefetch is not None else reader.open
    return [
        [_read_one(path, opener, e, file_seconds) for path, e in zip(part, entries, strict=True)]
        for part, (_, _, entries) in zip(paths, parts, strict=True)
    ]


def read_batch(reader: Reader, folder: str, sep: str, entries: Sequence[Entry]) -> list[FileResult]:
    """`read_job` for some files of one folder."""
    return read_job(reader, [(folder, sep, entries)])[0]


class InProcess(Executor):
    """Runs jobs at once in this process: for `workers = 1` asked for explicitly (debugging, tests)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


@contextmanager
def _bare_main() -> Iterator[None]:
    """Spawn workers that do not import the parent's main module again. A spawned process first imports the
    parent's `__main__` (so that functions defined there unpickle); for `pacsindex` that is the whole
    command line, ~0.1 s in every worker. Jobs name functions of this module, so while workers are spawned
    the main module is one without a file to import."""
    with _main_lock:  # two threads spawning at once (a service's warm pool and a run) must not mix them up
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


class WorkerPool:
    """The run's header readers: `workers` spawned processes (or this process, `in_process`: by default when
    one is asked for), each file's read under `file_seconds`. `replace()` starts a new pool for a broken one
    (with `kill`, for a stuck one); `read_alone` reads one file in a job of its own, so the file that kills
    or hangs a worker is found."""

    def __init__(self, workers: int, file_seconds: float = 60.0, in_process: bool | None = None) -> None:
        self.workers = max(1, workers)
        self.file_seconds = file_seconds
        self.in_process = self.workers == 1 if in_process is None else in_process
        self._executor = self._new()

    def _new(self) -> Executor:
        if self.in_process:
            return InProcess()
        return ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker
        )

    def submit(self, reader: Reader, parts: Sequence[JobPart]) -> Future[list[list[FileResult]]]:
        with _bare_main():  # the executor spawns its processes inside submit
            return self._executor.submit(read_job, reader, parts, self.file_seconds)

    def replace(self, kill: bool = False) -> None:
        self.shutdown(kill)
        self._executor = self._new()

    def release(self, kill: bool = False) -> None:
        """The run is done with its pool: a pool of its own is stopped (a lent one is given back)."""
        self.shutdown(kill)

    def shutdown(self, kill: bool = False) -> None:
        """Stop the pool; with `kill`, at once (workers only read, so nothing is lost: a failed run's jobs
        would only fail the same way, e.g. each waiting for a NAS that has gone)."""
        if kill:
            procs = list((getattr(self._executor, "_processes", None) or {}).values())
            # Jobs not started are cancelled by the pool's own thread before the kill: on Python 3.11 a job
            # cancelled from outside makes that thread fail while it marks the others broken, leaving them
            # unfinished (fixed in 3.12).
            self._executor.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.kill()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def read_alone(self, reader: Reader, folder: str, sep: str, entry: Entry) -> FileResult:
        path = folder + sep + entry.name
        budget = self.file_seconds
        fut = self.submit(reader, [(folder, sep, [entry])])
        try:
            return fut.result(timeout=budget + 30)[0][0]  # + a new pool's start-up
        except BrokenProcessPool:
            self.replace()
            log.warning("a header-reading process died on one file; it is recorded as an error")
            return FileResult(path, "error", reason=WORKER_DIED)
        except TimeoutError:
            self.replace(kill=True)
            log.warning("a header read did not finish in %g s; it is recorded as an error", budget)
            return FileResult(path, "error", reason=overtime_reason(budget))
