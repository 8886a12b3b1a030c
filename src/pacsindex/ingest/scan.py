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
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any

from pacsindex.dicom.headers import FileResult, read_header
from pacsindex.errors import PacsIndexError, StoreError
from pacsindex.index import store
from pacsindex.index.clock import utcnow
from pacsindex.index.locking import WriterLock
from pacsindex.index.sa.enrich import Enricher
from pacsindex.index.sa.samatch import Tables
from pacsindex.index.writer import KnownFile, Writer
from pacsindex.ingest.progress import Progress, RateMeter
from pacsindex.ingest.records import Described, Records, describe, is_unchanged
from pacsindex.sources.files import (
    DirListing,
    Entry,
    Reader,
    Source,
    WalkError,
    join_sep,
    split_path,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


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
    retry_errors: bool = False  # read every file stored as an error again, not only transient ones


def _init_worker() -> None:
    # Ctrl-C goes to the whole process group; the parent stops the run cleanly, workers just finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("pydicom").setLevel(logging.ERROR)


JobPart = tuple[str, str, Sequence[Entry]]  # (folder, sep, some of its files)


def read_job(reader: Reader, parts: Sequence[JobPart]) -> list[list[FileResult]]:
    """Run in a worker process: read the headers of a job's files, some files of each of one or more
    folders; one result list per part. A reader that has `prefetch(paths) -> opener` (SMB: one round trip a
    file, many in flight) fetches the whole job at once."""
    paths = [[folder + sep + e.name for e in entries] for folder, sep, entries in parts]
    prefetch = getattr(reader, "prefetch", None)
    opener = prefetch([p for part in paths for p in part]) if prefetch is not None else reader.open
    return [
        [read_header(path, opener, e.size, e.name) for path, e in zip(part, entries, strict=True)]
        for part, (_, _, entries) in zip(paths, parts, strict=True)
    ]


@dataclass
class _Job:
    """Some files of one folder, as a part of a worker job (or written straight from a record)."""

    dir_id: int
    folder: str
    sep: str
    entries: Sequence[Entry]
    known: dict[str, KnownFile]


class _InProcess(Executor):
    """Runs jobs at once in this process: for workers=1 and tiny runs, where process start-up costs more."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


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
    ) -> None:
        self.db_path = db_path
        self.sources = list(sources)
        self.tables = tables  # the practice's medical-aid and hospital tables (settings file); None: built-in
        self.options = options or ScanOptions()
        self.on_progress = on_progress
        self.cancel = cancel or threading.Event()
        self.counters = dict.fromkeys((*store.RUN_COUNTERS, "files_from_records"), 0)
        self._records = Records()
        self._series_count = 0
        self._rate = RateMeter()
        self._last_emit = (0, 0.0)
        self._enumeration_done = False
        self._progress: Progress | None = None

    # -- progress --------------------------------------------------------------------------------------
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
        self._series_count = store.series_count(conn)
        writer = Writer(conn, run_id, Enricher(self.tables))
        workers = self.options.workers or default_workers()
        executor: Executor
        if workers <= 1:
            executor = _InProcess()
        else:
            executor = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
            )
        state, message = "running", None
        try:
            complete = self._pipeline(writer, executor, max(1, workers) * 4)
            if self.cancel.is_set():
                state, message = (
                    "cancelled",
                    "stopped by request; the next run resumes where this one stopped",
                )
            else:
                state = "completed"
                if complete:
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
            executor.shutdown(wait=True, cancel_futures=True)
            try:
                self._series_count = store.series_count(conn)
                store.finish_run(conn, run_id, state, self.counters, message)
            except sqlite3.Error:
                log.exception("could not record the end of run %d", run_id)
            if self.on_progress is not None:
                self.on_progress(self.snapshot(state, message))
        return self.snapshot(state, message)

    def _pipeline(self, writer: Writer, executor: Executor, max_inflight: int) -> bool:
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
            nonlocal pack, pack_files
            if not pack:
                return
            while len(inflight) >= max_inflight:
                collect(block=True)
            fut = executor.submit(read_job, reader, [(j.folder, j.sep, j.entries) for j in pack])
            inflight[fut] = pack
            pack, pack_files = [], 0

        def add(
            reader: Reader,
            item: DirListing,
            dir_id: int,
            known: dict[str, KnownFile],
            fresh: list[Entry],
        ) -> None:
            nonlocal pack_files, pack_since
            start = 0
            while start < len(fresh):
                chunk = fresh[start : start + job_size - pack_files]
                if not pack:
                    pack_since = time.monotonic()
                pack.append(_Job(dir_id, item.path, item.sep, chunk, known))
                pack_files += len(chunk)
                start += len(chunk)
                if pack_files >= job_size:
                    send(reader)

        for source in self.sources:
            reader = readers[id(source)]
            walker = source.walk(self.cancel)
            try:
                for item in walker:
                    if self.cancel.is_set():
                        break
                    if isinstance(item, WalkError):
                        self._record_walk_error(writer, item)
                        continue
                    dir_id, known = writer.open_dir(item.path, item.sep)
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
                        self._records.catalog_seen.update((dir_id, e.name) for e in entries)
                    fresh = self._from_records(source, reader, writer, item, dir_id, known, fresh, described)
                    add(reader, item, dir_id, known, fresh)
                    if pack and time.monotonic() - pack_since >= job_seconds:
                        send(reader)
                    collect(block=False)
                    self._emit()
                    if limit_hit:
                        break
            finally:
                close = getattr(walker, "close", None)
                if close:
                    close()
            if getattr(source, "known_record", None) is not None and not (self.cancel.is_set() or limit_hit):
                # The catalog was read to its end: the rows it described before and lists no more are gone.
                seen = self._records.catalog_seen
                c["files_removed"] += writer.remove_described(source.label, seen)
            if self.cancel.is_set():
                pack, pack_files = [], 0  # like a job not started yet: the next run reads these files
                break
            send(reader)  # a job holds one source's files: it is read with that source's reader
            if limit_hit:
                break
        self._enumeration_done = not self.cancel.is_set()
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
        reader: Reader,
        writer: Writer,
        item: DirListing,
        dir_id: int,
        known: dict[str, KnownFile],
        fresh: list[Entry],
        described: Described | None,
    ) -> list[Entry]:
        """Index the files whose fields records give (a catalog's, a DICOMDIR's: see ingest/records.py)
        without opening each; returns the files still to read."""
        split = self._records.split(source, reader, item, dir_id, known, fresh, described)
        if split.direct:
            job = _Job(dir_id, item.path, item.sep, split.direct, known)
            self._write_results(writer, job, split.results, read=False, sigs=split.sigs)
        self.counters["files_read"] += split.opened + split.wasted  # one header per DICOMDIR series
        self.counters["files_from_records"] += len(split.direct) - split.opened
        return split.to_read

    def _write_results(
        self,
        writer: Writer,
        job: _Job,
        results: list[FileResult],
        read: bool = True,
        sigs: Sequence[str | None] | None = None,
    ) -> None:
        c = self.counters
        for i, (entry, result) in enumerate(zip(job.entries, results, strict=True)):
            if read and (job.dir_id, entry.name) in self._records.described:
                # A catalog of this run described this file while a worker read it: one row per file,
                # and the catalog's record is what the practice filed.
                c["files_processed"] += 1
                continue
            writer.put_file(
                job.dir_id,
                job.folder,
                entry.name,
                entry.size,
                entry.mtime_ns,
                result,
                replacing=entry.name in job.known,
                record_sig=sigs[i] if sigs is not None else None,
            )
            c["files_read"] += read
            c["files_processed"] += 1
            if result.status == "error":
                c["errors"] += 1
                log.debug("error reading %s: %s", result.path, result.reason)
            elif result.status == "non_dicom":
                c["non_dicom"] += 1

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
    *,
    tables: Tables | None = None,
) -> Progress:
    """Index `sources` into the index at `db_path`; returns the final progress snapshot. `tables`: the
    medical-aid and hospital tables built from the settings (`samatch.load_tables(settings.extra)`)."""
    return Run(db_path, sources, options, on_progress, cancel, tables=tables).run()
