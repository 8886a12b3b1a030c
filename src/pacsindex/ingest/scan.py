"""An indexing run: walk the sources → diff each folder against the index → read new and changed headers in
worker processes → write in batched transactions → report progress.

Why this shape: header parsing is CPU-bound Python, so it runs in processes (threads would fight over the
GIL); listing folders and stat'ing files wait on the disk or the network, so they run in threads inside the
sources. The main thread is the index's one writer. Each transaction holds whole files, so a run killed at
any moment resumes without reading finished files again or counting anything twice. A job sent to a worker
holds the files of several folders (a series folder often has ~10 files): every submit costs the main
process a pickle and a pipe write, and at one job per folder those were a sixth of a first index.

Hostile or broken files must not stop a run (issue 14). Each file has a time budget (`file_seconds`): in a
worker process a timer interrupts a header read that runs over, and the file is recorded as an error. A
worker that dies (a crash in a C library, `os._exit`, the out-of-memory killer) breaks the process pool:
the run starts a new pool and reads the files that were in flight again one at a time, each in its own
job, so the file that kills a worker again is found and recorded as an error; the rest are read normally.
A pool that makes no progress for longer than the budget allows (a read stuck in C code where no timer can
reach it) is stopped and treated the same way.

A first index surveys new folders (`ingest/survey.py`): one file of each is read as the walk finds it, so
every series is searchable early, and the folder's other files wait for idle workers and for the end of
the walk. Those reads are jobs of the same worker pool, under the same guarantees.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace

from pacsindex.dicom.headers import FileResult
from pacsindex.errors import PacsIndexError, StoreError
from pacsindex.index import store
from pacsindex.index.clock import utcnow
from pacsindex.index.locking import WriterLock
from pacsindex.index.sa.enrich import Enricher
from pacsindex.index.sa.samatch import Tables
from pacsindex.index.writer import KnownFile, Writer
from pacsindex.ingest.books import Books, Job
from pacsindex.ingest.progress import Progress, RateMeter
from pacsindex.ingest.quick import RECENT_S, quick_rule
from pacsindex.ingest.records import describe, is_unchanged
from pacsindex.ingest.survey import Survey
from pacsindex.ingest.warm import WarmPool
from pacsindex.ingest.workers import WorkerPool
from pacsindex.sources.files import (
    DirKept,
    DirListing,
    Entry,
    Reader,
    SkipFn,
    Source,
    WalkError,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]


def default_workers() -> int:
    """One header-reading process per CPU this process may run on (a container's or VM's share, not the
    host's count)."""
    if hasattr(os, "sched_getaffinity"):  # not on Windows
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class ScanOptions:
    workers: int = 0  # 0: one process per CPU (a process even on one CPU); 1: read in this process
    limit: int | None = None  # stop after this many files (a sample run)
    job_size: int = 48  # files per job sent to a worker process (small folders share a job)
    job_seconds: float = 0.1  # a job not yet full is sent once its first files waited this long
    commit_files: int = 1000
    commit_seconds: float = 0.5
    progress_files: int = 50
    progress_seconds: float = 0.25
    retry_errors: bool = False  # read every file stored as an error again, not only transient ones
    file_seconds: float = 60.0  # a header read that takes longer is stopped; the file is an error
    full: bool = (
        False  # list every folder; a quick pass (False) keeps unchanged folders unlisted (ingest/quick.py)
    )
    recent_s: float = RECENT_S  # a quick pass lists the folders of a study that changed this lately
    survey: bool = True  # a folder new to the index: read one file at once, the others later (survey.py)
    survey_files: int = 200_000  # at most this many files wait for the survey's second half (memory)


class Run:
    """One indexing run over some sources into the index at `db_path`."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        sources: Sequence[Source],
        options: ScanOptions | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        *,
        tables: Tables | None = None,
        pool: WarmPool | None = None,
    ) -> None:
        self.db_path = db_path
        self.lender = pool  # the service's warm header readers, borrowed for this run when free
        self.sources = list(sources)
        self.tables = tables  # the practice's medical-aid and hospital tables (settings file); None: built-in
        self.options = options or ScanOptions()
        self.on_progress = on_progress
        self.cancel = cancel or threading.Event()
        self.counters = dict.fromkeys(
            (*store.RUN_COUNTERS, "files_from_records", "folders_listed", "folders_kept"), 0
        )
        self.books = Books(self.counters)  # what results write and count (ingest/books.py)
        self._close_skip: Callable[[], None] = lambda: None
        self._series_count = self._series_filling = 0
        self._rate = RateMeter()
        self._last_emit = (0, 0.0)
        self._enumeration_done = False
        self._progress: Progress | None = None
        self._pool = WorkerPool(1)

    # -- progress --------------------------------------------------------------------------------------
    def _count_series(self, conn: sqlite3.Connection) -> None:
        self._series_count, self._series_filling = store.series_count(conn), store.filling_count(conn)

    def snapshot(self, state: str = "running", message: str | None = None) -> Progress:
        assert self._progress is not None
        if message is None and state in ("running", "completed"):
            # A source on a slow link says so (e.g. SMB: "map the share instead"), in the final summary
            # and index_status.json too.
            message = next((h for h in (getattr(s, "hint", None) for s in self.sources) if h), None)
        c = self.counters
        now = utcnow()
        rate = self._rate.add(c["files_processed"])
        eta = None
        if self._enumeration_done and state == "running":
            remaining = c["enumerated_files"] - c["files_processed"]
            eta = remaining / rate if rate > 0 else None
        self._progress = replace(
            self._progress,
            state=state,
            enumeration_done=self._enumeration_done,
            series_count=self._series_count,
            series_filling=self._series_filling,
            last_updated=now,
            files_per_s=rate,
            eta_s=0.0 if state != "running" else eta,
            message=message,
            **c,  # type: ignore[arg-type]  # the run counters are Progress's int fields
        )
        return self._progress

    def _emit(self, force: bool = False) -> None:
        if self.on_progress is None:
            return
        done = self.counters["files_processed"]
        now = time.monotonic()
        last_done, last_t = self._last_emit
        if (
            force
            or done - last_done >= self.options.progress_files
            or now - last_t >= self.options.progress_seconds
        ):
            self._last_emit = (done, now)
            self.on_progress(self.snapshot())

    # -- the run ---------------------------------------------------------------------------------------
    def run(self) -> Progress:
        for source in self.sources:
            source.check()
        with WriterLock(self.db_path):
            conn = store.connect(self.db_path)
            try:
                return self._run(conn)
            finally:
                conn.close()

    def _run(self, conn: sqlite3.Connection) -> Progress:
        started = utcnow()
        roots = tuple(s.label for s in self.sources)
        run_id = store.begin_run(conn, roots, started)
        self._progress = Progress(run_id=run_id, roots=roots, state="running", started_at=started)
        self._count_series(conn)
        writer = Writer(conn, run_id, Enricher(self.tables))
        workers = self.options.workers or default_workers()
        # Only an explicit 1 reads in this process: by default a file that crashes or hangs its reader costs
        # that file alone (issue 14), also on a one-CPU machine.
        in_process = self.options.workers == 1
        lender = self.lender
        lent = lender.lend(workers, self.options.file_seconds, in_process) if lender is not None else None
        self._pool = lent or WorkerPool(workers, self.options.file_seconds, in_process)
        state, message = "running", None
        try:
            complete = self._pipeline(writer, max(1, workers) * 4)
            if self.cancel.is_set():
                state, message = (
                    "cancelled",
                    "stopped by request; the next run resumes where this one stopped",
                )
            else:
                state = "completed"
                if complete:
                    writer.clear_filling()  # every file found was read (also those a stopped run left)
                    for source in self.sources:
                        self.counters["files_removed"] += writer.remove_unseen(source.complete_roots())
                else:
                    message = f"stopped after {self.options.limit} files (--limit)"
            writer.commit()
        except BrokenProcessPool as exc:
            writer.rollback()
            state, message = "failed", "a header-reading worker process died; run again to resume"
            raise PacsIndexError(message) from exc
        except (sqlite3.Error, OSError) as exc:
            writer.rollback()
            state, message = "failed", f"cannot write the index {self.db_path}: {exc}"
            raise StoreError(message) from exc
        except PacsIndexError as exc:
            writer.rollback()
            state, message = "failed", str(exc)
            raise
        except BaseException:
            writer.rollback()
            state, message = "failed", "interrupted"
            raise
        finally:
            self._close_skip()
            self._pool.release(kill=state == "failed")
            try:
                self._count_series(conn)
                store.finish_run(conn, run_id, state, self.counters, message)
            except sqlite3.Error as exc:
                # Often the same cause as the run's own error (a full disk): that one line is enough; the
                # run stays "running" in the index and the next run marks it interrupted.
                log.info("could not record the end of run %d: %s", run_id, exc)
            if self.on_progress is not None:
                self.on_progress(self.snapshot(state, message))
        return self.snapshot(state, message)

    def _pipeline(self, writer: Writer, max_inflight: int) -> bool:
        """Returns True when every source was walked to the end (so files not seen are gone)."""
        opts = self.options
        c = self.counters
        readers = {id(s): s.reader() for s in self.sources}
        # A job is a list of parts (some files of one folder each), sent once it holds `job_size` files, or
        # its first part waited `job_seconds`, or the source's walk ended: never the whole listing. A run
        # asked to commit at once (commit_seconds=0) sends every folder at once too: results wait no longer
        # to be read than to be committed.
        job_seconds = min(opts.job_seconds, opts.commit_seconds)
        job_size = max(1, opts.job_size)
        # A job in flight: its parts, the reader it was sent with, when it was sent.
        inflight: dict[Future[list[list[FileResult]]], tuple[list[Job], Reader, float]] = {}
        pack: list[Job] = []
        pack_files = 0
        pack_since = 0.0
        last_commit = time.monotonic()
        last_done = time.monotonic()
        limit_hit = False

        def commit() -> None:
            nonlocal last_commit
            writer.commit()
            last_commit = time.monotonic()
            # The series are counted after every commit, so the Indexing page says what searches see even
            # when the walk then waits long for a listing. count(*) costs ~1 ms at 100k series, and commits
            # come every commit_seconds (0.5) or commit_files (1,000): well under 1 % of the run.
            self._count_series(writer.conn)

        def stuck() -> bool:
            """No job has finished for longer than the oldest one's files may take."""
            parts, _, sent = next(iter(inflight.values()))
            files = sum(len(j.entries) for j in parts)
            return time.monotonic() - max(last_done, sent) > opts.file_seconds * files + 30

        def collect(block: bool) -> None:
            nonlocal last_done
            done = [fut for fut in inflight if fut.done()]  # once per folder: cheaper than wait(timeout=0)
            if block and inflight and not done:
                # The web service writes to this database too (sign-in, sessions, the audit log): never
                # keep the write lock while waiting for a worker. Results still arrive in batches.
                commit()
                while not done:
                    done = list(wait(list(inflight), timeout=5, return_when=FIRST_COMPLETED)[0])
                    if not done and stuck():
                        log.warning("no header read finished for too long: restarting the worker processes")
                        self._pool.replace(kill=True)
                        done = list(wait(list(inflight), timeout=30, return_when=FIRST_COMPLETED)[0])
            broken: list[tuple[list[Job], Reader]] = []
            for fut in done:
                parts, reader, _ = inflight.pop(fut)
                last_done = time.monotonic()
                try:
                    results = fut.result()
                except (BrokenProcessPool, CancelledError):  # cancelled: by a pool the watchdog stopped
                    broken.append((parts, reader))
                    continue
                for job, job_results in zip(parts, results, strict=True):
                    self.books.write_results(writer, job, job_results)
            if broken:
                # A worker died: every job still in the pool died with it. Read those files again, each
                # alone in a new pool, so the one that kills a worker is recorded and the rest are read.
                wait(list(inflight))
                for fut, (parts, reader, _) in list(inflight.items()):
                    if not fut.cancelled() and fut.exception() is None:
                        for job, job_results in zip(parts, fut.result(), strict=True):
                            self.books.write_results(writer, job, job_results)
                    else:
                        broken.append((parts, reader))
                    del inflight[fut]
                log.warning("a header-reading process died: reading the files it had one at a time")
                self._pool.replace()
                for parts, reader in broken:
                    for job in parts:
                        alone = [self._pool.read_alone(reader, job.folder, job.sep, e) for e in job.entries]
                        self.books.write_results(writer, job, alone)
                last_done = time.monotonic()
            # Also when nothing is in flight (an unchanged re-scan): a listing holds the lock too.
            committed = (
                writer.pending >= opts.commit_files or time.monotonic() - last_commit >= opts.commit_seconds
            )
            if committed:
                commit()
            self._emit(
                force=committed
            )  # what searches now see, the page says too, even if the walk then waits

        def submit(reader: Reader, jobs: list[Job]) -> None:
            parts = [(j.folder, j.sep, j.entries) for j in jobs]
            try:
                fut = self._pool.submit(reader, parts)
            except BrokenProcessPool:  # a worker died since the last collect: recover, then send
                while inflight:
                    collect(block=True)
                self._pool.replace()
                fut = self._pool.submit(reader, parts)
            inflight[fut] = (jobs, reader, time.monotonic())

        def send(reader: Reader) -> None:
            nonlocal pack, pack_files
            if not pack:
                return
            while len(inflight) >= max_inflight:
                collect(block=True)
            submit(reader, pack)
            pack, pack_files = [], 0

        def add(
            reader: Reader,
            item: DirListing,
            dir_id: int,
            known: dict[str, KnownFile],
            fresh: Sequence[Entry],
            survey: bool = False,
        ) -> None:
            nonlocal pack_files, pack_since
            start = 0
            while start < len(fresh):
                chunk = fresh[start : start + job_size - pack_files]
                if not pack:
                    pack_since = time.monotonic()
                pack.append(Job(dir_id, item.path, item.sep, chunk, known, survey))
                pack_files += len(chunk)
                start += len(chunk)
                if pack_files >= job_size:
                    send(reader)

        skip: SkipFn | None = None
        if not opts.full and opts.limit is None:  # a sample run counts files: it lists what it counts
            skip, self._close_skip = quick_rule(self.db_path, opts.recent_s)
        # The survey (survey.py): one file of each new folder now, so the whole archive is searchable at
        # series level early; the others when a worker is idle, and after the walk.
        survey = self.books.survey = Survey(opts.survey and opts.limit is None, opts.survey_files)
        workers = self._pool.workers

        def feed_waiting() -> None:
            """While the walk goes on, give a worker process with nothing to do files the survey keeps
            waiting (one worker reads in this process: it never idles while the walk goes on)."""
            while survey.waiting and not self._pool.in_process and len(inflight) < workers:
                taken = survey.take(job_size)
                submit(
                    taken[0].reader,
                    [Job(w.dir_id, w.item.path, w.item.sep, w.entries, w.known) for w in taken],
                )

        for source in self.sources:
            reader = readers[id(source)]
            walker = source.walk(self.cancel, skip)
            try:
                for item in walker:
                    if self.cancel.is_set():
                        break
                    if isinstance(item, WalkError):
                        self.books.walk_error(writer, item)
                        continue
                    if isinstance(item, DirKept):
                        self.books.keep(writer, item)
                        collect(block=False)
                        continue
                    c["folders_listed"] += 1
                    dir_id, known = writer.open_dir(item.path, item.sep)
                    new_folder = not known
                    entries = item.entries
                    if opts.limit is not None and c["enumerated_files"] + len(entries) >= opts.limit:
                        limit_hit = c["enumerated_files"] + len(entries) > opts.limit
                        entries = entries[: opts.limit - c["enumerated_files"]]
                    c["enumerated_files"] += len(entries)
                    fresh: list[Entry] = []
                    unchanged = 0
                    described = describe(source, item)
                    for entry in entries:
                        old = known.pop(entry.name, None)
                        if old is not None and is_unchanged(old, entry, described, opts.retry_errors):
                            unchanged += 1
                            if old.status != "dicom":
                                c[old.status if old.status == "non_dicom" else "errors"] += 1
                            continue
                        if old is not None:
                            known[entry.name] = old  # changed: the write replaces its row
                        fresh.append(entry)
                    c["files_unchanged"] += unchanged
                    c["files_processed"] += unchanged
                    if item.complete and not limit_hit:
                        changed = {e.name for e in fresh}
                        gone = [k.id for name, k in known.items() if name not in changed]
                        c["files_removed"] += writer.remove_files(gone)
                    if described is not None:
                        self.books.records.catalog_seen.update((dir_id, e.name) for e in entries)
                    fresh = self.books.from_records(
                        source, reader, writer, item, dir_id, known, fresh, described
                    )
                    if item.complete and not limit_hit and item.mtime_ns is not None:
                        if fresh:
                            self.books.dir_state[dir_id] = [len(fresh), item.mtime_ns, item.has_subdirs]
                        else:
                            writer.set_dir_state(dir_id, item.mtime_ns, item.has_subdirs)
                    now = survey.split(reader, item, dir_id, known, new_folder, fresh)
                    add(reader, item, dir_id, known, now, survey=len(now) < len(fresh))
                    if pack and time.monotonic() - pack_since >= job_seconds:
                        send(reader)
                    collect(block=False)
                    feed_waiting()
                    self._emit()
                    if limit_hit:
                        break
            finally:
                close = getattr(walker, "close", None)
                if close:
                    close()
            if getattr(source, "known_record", None) is not None and not (self.cancel.is_set() or limit_hit):
                # The catalog was read to its end: the rows it described before and lists no more are gone.
                seen = self.books.records.catalog_seen
                c["files_removed"] += writer.remove_described(source.label, seen)
            if self.cancel.is_set():
                pack, pack_files = [], 0  # like a job not started yet: the next run reads these files
                break
            send(reader)  # a job holds one source's files: it is read with that source's reader
            if limit_hit:
                break
        self._enumeration_done = not self.cancel.is_set()
        if survey.waiting and not self.cancel.is_set():
            # Every series found is searchable from here on, while the rest of its files come: the first
            # files still in flight are written first.
            while inflight:
                collect(block=True)
            commit()
        while survey.waiting and not self.cancel.is_set():  # the survey's second half, in listing order
            taken = survey.take(job_size)
            for w in taken:
                add(w.reader, w.item, w.dir_id, w.known, w.entries)
            send(taken[0].reader)
            collect(block=False)
        survey.waiting.clear()  # a stopped run: the next one reads these files
        while inflight:
            if self.cancel.is_set():
                for fut in list(inflight):
                    if fut.cancel():
                        inflight.pop(fut)
                if not inflight:
                    break
            collect(block=True)
        self._emit(force=True)
        return not limit_hit and not self.cancel.is_set()


def run_index(
    db_path: str | os.PathLike[str],
    sources: Sequence[Source],
    options: ScanOptions | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    *,
    tables: Tables | None = None,
) -> Progress:
    """Index `sources` into the index at `db_path`; returns the final progress snapshot. `tables`: the
    medical-aid and hospital tables built from the settings (`samatch.load_tables(settings.extra)`)."""
    return Run(db_path, sources, options, on_progress, cancel, tables=tables).run()
