"""An indexing run: walk the sources → diff each folder against the index → read new and changed headers in
worker processes → write in batched transactions → report progress.

Why this shape: header parsing is CPU-bound Python, so it runs in processes (threads would fight over the
GIL); listing folders and stat'ing files wait on the disk or the network, so they run in threads inside the
sources. The main thread is the index's one writer. Each transaction holds whole files, so a run killed at
any moment resumes without reading finished files again or counting anything twice. A job sent to a worker
holds the files of several folders (a series folder often has ~10 files): every submit costs the main
process a pickle and a pipe write, and at one job per folder those were a sixth of a first index.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from dataclasses import dataclass, replace

from pacsindex.dicom.headers import FileResult
from pacsindex.errors import PacsIndexError, StoreError
from pacsindex.index import store
from pacsindex.index.locking import WriterLock
from pacsindex.index.writer import KnownFile, Writer
from pacsindex.ingest.progress import Progress, RateMeter
from pacsindex.ingest.quick import quick_rule
from pacsindex.ingest.survey import Survey
from pacsindex.ingest.worker import ReadPool, default_workers, read_job
from pacsindex.sources.dicomdir import DicomdirIndex
from pacsindex.sources.files import (
    DirKept,
    DirListing,
    Entry,
    LocalTree,
    Reader,
    SkipFn,
    Source,
    WalkError,
    join_sep,
    split_path,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class ScanOptions:
    workers: int = 0  # 0: one process per CPU; 1: read in this process
    limit: int | None = None  # stop after this many files (a sample run)
    job_size: int = 48  # files per job sent to a worker process (small folders share a job)
    job_seconds: float = 0.1  # a job not yet full is sent once its first files waited this long
    commit_files: int = 1000
    commit_seconds: float = 0.5
    progress_files: int = 50
    progress_seconds: float = 0.25
    pool_after_seconds: float = 0.2  # read in this process first; start worker processes after this much
    full: bool = False  # list every folder; a quick pass (False) skips leaves whose time has not moved
    survey: bool = True  # a folder new to the index: read one file at once, the others after the walk
    survey_files: int = 200_000  # at most this many files wait for the survey's second half (memory)


@dataclass
class _Job:
    """Some files of one folder, as a part of a worker job (or written straight from a record)."""

    dir_id: int
    folder: str
    sep: str
    entries: Sequence[Entry]
    known: dict[str, KnownFile]
    survey: bool = False  # the one file read first of a folder whose other files wait (see `_pipeline`)


class Run:
    """One indexing run over some sources into the index at `db_path`."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        sources: Sequence[Source],
        options: ScanOptions | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        pool: ReadPool | None = None,
    ) -> None:
        self.db_path = db_path
        # A pool given here is the caller's (the web service keeps one warm across runs); else the run makes
        # its own, starts it only if it reads long enough, and stops it at the end.
        self._own_pool = pool is None
        self.pool = pool
        self.sources = list(sources)
        self.options = options or ScanOptions()
        self.on_progress = on_progress
        self.cancel = cancel or threading.Event()
        self.counters = dict.fromkeys(
            (*store.RUN_COUNTERS, "files_from_records", "folders_listed", "folders_kept"), 0
        )
        # Folders whose files are still being read: [files left, mtime, has subfolders]. Their time is stored
        # only once the last of them is written, so a run stopped half-way never makes a folder look done.
        self._dir_state: dict[int, list[int]] = {}
        self._survey = Survey(False, 0)
        self._close_skip: Callable[[], None] = lambda: None
        self._dicomdirs = DicomdirIndex()
        self._series_count = 0
        self._rate = RateMeter()
        self._last_emit = (0, 0.0)
        self._enumeration_done = False
        self._progress: Progress | None = None

    # -- progress --------------------------------------------------------------------------------------
    def snapshot(self, state: str = "running", message: str | None = None) -> Progress:
        assert self._progress is not None
        if message is None and state == "running":
            # A source on a slow link says so (e.g. SMB: "mount the share locally instead").
            message = next((h for h in (getattr(s, "hint", None) for s in self.sources) if h), None)
        c = self.counters
        now = store.utcnow()
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
        started = store.utcnow()
        roots = tuple(s.label for s in self.sources)
        run_id = store.begin_run(conn, roots, started)
        self._progress = Progress(run_id=run_id, roots=roots, state="running", started_at=started)
        self._series_count = store.series_count(conn)
        writer = Writer(conn, run_id)
        workers = self.pool.workers if self.pool is not None else self.options.workers or default_workers()
        if self.pool is None and workers > 1:
            self.pool = ReadPool(workers)
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
        except BrokenExecutor as exc:  # a worker process died (BrokenProcessPool)
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
            if self._own_pool and self.pool is not None:
                self.pool.shutdown(idle=state == "completed")  # every result is in: nothing to wait for
            try:
                self._series_count = store.series_count(conn)
                store.finish_run(conn, run_id, state, self.counters, message)
            except sqlite3.Error:
                log.exception("could not record the end of run %d", run_id)
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
        inflight: dict[Future[list[list[FileResult]]], list[_Job]] = {}
        pack: list[_Job] = []
        pack_files = 0
        pack_since = 0.0
        last_commit = time.monotonic()
        last_count = float("-inf")
        limit_hit = False
        pool = self.pool
        read_here = 0.0  # seconds spent reading in this process

        def commit() -> None:
            nonlocal last_commit, last_count
            writer.commit()
            last_commit = now = time.monotonic()
            # Many commits a second; count(*) costs ~1 ms at 100k series: count as often as progress goes out.
            if now - last_count >= opts.progress_seconds:
                self._series_count = store.series_count(writer.conn)
                last_count = now

        def collect(block: bool) -> None:
            done = [fut for fut in inflight if fut.done()]  # once per folder: cheaper than wait(timeout=0)
            if block and inflight and not done:
                # The web service writes to this database too (sign-in, sessions, the audit log): never
                # keep the write lock while waiting for a worker. Results still arrive in batches.
                commit()
                done = list(wait(list(inflight), return_when=FIRST_COMPLETED)[0])
            for fut in done:
                parts = inflight.pop(fut)
                for job, results in zip(parts, fut.result(), strict=True):
                    self._write_results(writer, job, results)
            # Also when nothing is in flight (an unchanged re-scan): a listing holds the lock too.
            if writer.pending >= opts.commit_files or time.monotonic() - last_commit >= opts.commit_seconds:
                commit()
            self._emit()

        def send(reader: Reader) -> None:
            nonlocal pack, pack_files, read_here
            if not pack:
                return
            parts = [(j.folder, j.sep, j.entries) for j in pack]
            # A survey's first files are read here: this process already has its connection to the NAS,
            # while a worker's first job waits for the worker to connect (seconds, on a slow link).
            to_pool = pool is not None and pool.ready and not any(j.survey for j in pack)
            if pool is not None and to_pool and len(inflight) < max_inflight:
                inflight[pool.submit(read_job, reader, parts)] = pack
            elif pool is not None and to_pool and any(fut.done() for fut in inflight):
                collect(block=False)
                inflight[pool.submit(read_job, reader, parts)] = pack
            else:
                # No worker is up yet (or there are none, or each has jobs queued): read here, now,
                # instead of waiting for one; this process's core would otherwise idle.
                t0 = time.monotonic()
                for job, results in zip(pack, read_job(reader, parts), strict=True):
                    self._write_results(writer, job, results)
                read_here += time.monotonic() - t0
                if pool is not None and not pool.started and read_here >= opts.pool_after_seconds:
                    pool.start()
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
                pack.append(_Job(dir_id, item.path, item.sep, chunk, known, survey))
                pack_files += len(chunk)
                start += len(chunk)
                if pack_files >= job_size:
                    send(reader)

        skip: SkipFn | None = None
        if not opts.full and opts.limit is None:  # a sample run counts files: it lists what it counts
            skip, self._close_skip = quick_rule(self.db_path)
        # The survey (survey.py): one file of each new folder now, so the whole archive is searchable at
        # series level early; the others when workers are idle, and after the walk.
        survey = self._survey = Survey(opts.survey and opts.limit is None, opts.survey_files)

        def feed_waiting() -> None:
            """While the walk goes on, give workers with nothing to do the files the survey keeps waiting."""
            while survey.waiting and pool is not None and pool.ready and len(inflight) < max_inflight:
                taken = survey.take(job_size)
                jobs = [_Job(w.dir_id, w.item.path, w.item.sep, w.entries, w.known) for w in taken]
                parts = [(j.folder, j.sep, j.entries) for j in jobs]
                inflight[pool.submit(read_job, taken[0].reader, parts)] = jobs
        for source in self.sources:
            reader = readers[id(source)]
            walker = source.walk(self.cancel, skip)
            try:
                for item in walker:
                    if self.cancel.is_set():
                        break
                    if isinstance(item, WalkError):
                        self._record_walk_error(writer, item)
                        continue
                    if isinstance(item, DirKept):
                        self._keep(writer, item)
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
                    for entry in entries:
                        old = known.pop(entry.name, None)
                        if old is not None and old.size == entry.size and old.mtime_ns == entry.mtime_ns:
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
                    fresh = self._from_records(source, writer, item, dir_id, known, fresh)
                    if item.complete and not limit_hit and item.mtime_ns is not None:
                        if fresh:
                            self._dir_state[dir_id] = [len(fresh), item.mtime_ns, item.has_subdirs]
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

            if self.cancel.is_set():
                pack, pack_files = [], 0  # like a job not started yet: the next run reads these files
                break
            send(reader)  # a job holds one source's files: it is read with that source's reader
            if limit_hit:
                break
        self._enumeration_done = not self.cancel.is_set()
        if survey.waiting and not self.cancel.is_set():
            commit()  # every series found is searchable from here on, while the rest of its files come
        previous: Reader | None = None
        while survey.waiting and not self.cancel.is_set():  # the survey's second half, in listing order
            for w in survey.take(job_size):
                if previous is not None and w.reader is not previous:
                    send(previous)
                previous = w.reader
                add(w.reader, w.item, w.dir_id, w.known, w.entries)
            if pack and previous is not None and time.monotonic() - pack_since >= job_seconds:
                send(previous)
            collect(block=False)
        if self.cancel.is_set():
            pack, pack_files = [], 0  # like a job not started yet: the next run reads these files
        elif previous is not None:
            send(previous)
        survey.waiting.clear()
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

    def _from_records(
        self,
        source: Source,
        writer: Writer,
        item: DirListing,
        dir_id: int,
        known: dict[str, KnownFile],
        fresh: list[Entry],
    ) -> list[Entry]:
        """Index files whose fields are already known without opening them: new files a DICOMDIR in a local
        tree describes, and every file a catalog lists. Returns the files still to read."""
        catalog = getattr(source, "known_record", None)
        if isinstance(source, LocalTree):
            for entry in item.entries:
                if entry.name.upper() == "DICOMDIR":
                    self._dicomdirs.load(item.path + item.sep + entry.name, entry.mtime_ns)
        if catalog is None and not len(self._dicomdirs):
            return fresh
        to_read: list[Entry] = []
        direct: list[Entry] = []
        results: list[FileResult] = []
        for entry in fresh:
            path = item.path + item.sep + entry.name
            if catalog is not None:
                record = catalog(path)
            elif entry.name in known:
                record = None  # changed since it was indexed: read it for real
            else:
                record = self._dicomdirs.lookup(path, entry.mtime_ns)
            if record is None:
                to_read.append(entry)
            else:
                direct.append(entry)
                results.append(FileResult(path, "dicom", record))
        if direct:
            self._write_results(writer, _Job(dir_id, item.path, item.sep, direct, known), results, read=False)
            self.counters["files_from_records"] += len(direct)
        return to_read

    def _write_results(
        self, writer: Writer, job: _Job, results: list[FileResult], read: bool = True
    ) -> None:
        c = self.counters
        for entry, result in zip(job.entries, results, strict=True):
            writer.put_file(
                job.dir_id,
                job.folder,
                entry.name,
                entry.size,
                entry.mtime_ns,
                result,
                replacing=entry.name in job.known,
            )
            c["files_read"] += read
            c["files_processed"] += 1
            if result.status == "error":
                c["errors"] += 1
                log.debug("error reading %s: %s", result.path, result.reason)
            elif result.status == "non_dicom":
                c["non_dicom"] += 1
        filling = self._survey.written(job.dir_id, len(job.entries), job.survey) if read else None
        if filling is not None:
            writer.set_filling(job.dir_id, filling)
        state = self._dir_state.get(job.dir_id)
        if read and state is not None:
            state[0] -= len(job.entries)
            if state[0] <= 0:
                del self._dir_state[job.dir_id]
                writer.set_dir_state(job.dir_id, state[1], bool(state[2]))

    def _keep(self, writer: Writer, item: DirKept) -> None:
        files, non_dicom, errors = writer.keep_dir(item.path)
        c = self.counters
        c["folders_kept"] += 1
        c["enumerated_files"] += files
        c["files_unchanged"] += files
        c["files_processed"] += files
        c["non_dicom"] += non_dicom
        c["errors"] += errors

    def _record_walk_error(self, writer: Writer, item: WalkError) -> None:
        self.counters["errors"] += 1
        writer.add_error(item.path, item.reason)
        if item.is_dir:
            writer.mark_subtree_seen(item.path, join_sep(item.path))
        else:
            folder, name = split_path(item.path)
            self.counters["files_removed"] += writer.remove_path(folder, name)
        log.info("could not read a path: %s", item.reason)  # the path itself is patient data: DEBUG only
        log.debug("unreadable path %s: %s", item.path, item.reason)


def run_index(
    db_path: str | os.PathLike[str],
    sources: Sequence[Source],
    options: ScanOptions | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Progress:
    """Index `sources` into the index at `db_path`; returns the final progress snapshot."""
    return Run(db_path, sources, options, on_progress, cancel).run()
