"""What runs in the header-reading worker processes of an indexing run: `read_job` reads a job's files,
each under a time budget (a POSIX timer inside the worker; the run's watchdog elsewhere), and `InProcess`
runs jobs in the calling process when one worker is asked for. The pool itself, and replacing a worker
that dies, are the run's business (`ingest.scan`).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any

from pacsindex.dicom.headers import FileResult, read_header
from pacsindex.sources.files import Entry, Reader

__all__ = ["WORKER_DIED", "InProcess", "JobPart", "init_worker", "overtime_reason", "read_batch", "read_job"]

WORKER_DIED = "the header reader's process died on this file (a crash or out of memory); it was skipped"
_in_worker = False


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
    """Runs jobs at once in this process: for workers=1 and tiny runs, where process start-up costs more."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut
