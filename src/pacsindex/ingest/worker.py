"""The header-reading worker processes of an indexing run, and what runs inside them.

This module is what a worker imports (the job function is pickled by name), so it imports only the header
reader: a worker that starts in 40 ms instead of 100 ms matters when a whole run takes half a second.

Why a pool that starts late: spawning workers costs an interpreter and the imports each (~0.3-0.5 s on a
loaded 2-core machine), while reading one CT header in this process takes ~0.3 ms. A run reads its first
files in the main process at once and starts the pool only once it has read for `start_after` seconds; until
a worker has answered, jobs keep being read in the main process, so nothing waits for the pool to come up,
and a small run (one file, one CD export) never pays for it. `pacsindex serve` keeps one pool warm across
runs (scheduled re-scans never pay start-up). Windows has no fork: spawn is used everywhere, so what is
measured here is what a practice's desktop gets.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pacsindex.dicom.headers import FileResult, read_header

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from pacsindex.sources.files import Entry, Reader

__all__ = ["JobPart", "ReadPool", "default_workers", "read_job"]

JobPart = tuple[str, str, "Sequence[Entry]"]  # (folder, sep, some of its files)


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def init_worker() -> None:
    # Ctrl-C goes to the whole process group; the parent stops the run cleanly, workers just finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("pydicom").setLevel(logging.ERROR)


def read_job(reader: Reader, parts: Sequence[JobPart]) -> list[list[FileResult]]:
    """Read the headers of a job's files, some files of each of one or more folders; one result list per
    part. A reader that has `prefetch(paths) -> opener` (SMB: one round trip a file, many in flight) fetches
    the whole job at once. Runs in a worker process, or in the run's own process while the pool comes up."""
    paths = [[folder + sep + e.name for e in entries] for folder, sep, entries in parts]
    prefetch = getattr(reader, "prefetch", None)
    opener = prefetch([p for part in paths for p in part]) if prefetch is not None else reader.open
    return [
        [read_header(path, opener, e.size, e.name) for path, e in zip(part, entries, strict=True)]
        for part, (_, _, entries) in zip(paths, parts, strict=True)
    ]


@contextmanager
def _bare_main() -> Iterator[None]:
    """Spawn workers that do not run the parent's main module again.

    A spawned process first imports the parent's `__main__` (so that functions defined there unpickle):
    for `pacsindex` (a console script importing `pacsindex.cli`) or `python -m pacsindex` that is the whole
    command line, web service included, ~0.1 s in every worker. Jobs name functions of this module, so
    while the workers are spawned the main module is one without a file to import."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


class ReadPool:
    """Header-reading worker processes, started on first need (`start`), `ready` once a worker has answered,
    and reusable by later runs. Thread-safe: the web service's runs and its shutdown may call from different
    threads."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._warmups: list[Future[int]] = []

    def start(self) -> None:
        """Spawn the workers (in the background: this returns at once). A broken pool is replaced."""
        with self._lock:
            if self._executor is not None and not self._broken():
                return
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            # Imported here: multiprocessing costs ~10 ms at start-up, and most small runs never start a pool.
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker
            )
            # One trivial call per worker makes the executor spawn them all now (in this thread), and
            # tells when one is up.
            with _bare_main():
                self._warmups = [self._executor.submit(os.getpid) for _ in range(self.workers)]

    @property
    def started(self) -> bool:
        return self._executor is not None

    @property
    def ready(self) -> bool:
        """True once at least one worker has started and answered."""
        return any(f.done() and not f.exception() for f in self._warmups)

    @property
    def pids(self) -> frozenset[int]:
        """The ids of the worker processes alive now (for diagnostics and tests)."""
        processes = getattr(self._executor, "_processes", None) or {}  # the executor's own table
        return frozenset(pid for pid, proc in list(processes.items()) if proc.is_alive())

    def _broken(self) -> bool:
        return any(f.done() and isinstance(f.exception(), BrokenExecutor) for f in self._warmups) or bool(
            getattr(self._executor, "_broken", False)
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        if self._executor is None:
            raise RuntimeError("the read pool was not started")
        return self._executor.submit(fn, *args)

    def shutdown(self, idle: bool = False) -> None:
        """Stop the workers. `idle`: the caller has every result it asked for, so workers still starting up
        (a run that ended soon after it started the pool) are stopped at once instead of being waited for
        through their interpreter start-up and imports."""
        with self._lock:
            executor, self._executor, self._warmups = self._executor, None, []
        if executor is None:
            return
        if idle:
            processes = list((getattr(executor, "_processes", None) or {}).values())  # the executor's own
            executor.shutdown(wait=False, cancel_futures=True)
            for proc in processes:
                proc.terminate()
            for proc in processes:
                proc.join()
        executor.shutdown(wait=True, cancel_futures=True)
