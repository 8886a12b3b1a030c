"""What an indexing run writes and counts as results come in: the header results of a worker's job
(`Books.write_results`), the files a catalog's or a DICOMDIR's records describe (`from_records`), the
folders a quick pass keeps unlisted (`keep`) and the paths that could not be read (`walk_error`). `Books`
holds the run's counters, the folders whose modification time waits for their last file, the survey's books
and the records seen; the pipeline that feeds it (walk, jobs, workers, commits) is `ingest.scan`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pacsindex.dicom.headers import FileResult
from pacsindex.index.writer import KnownFile, Writer
from pacsindex.ingest.records import Described, Records
from pacsindex.ingest.survey import Survey
from pacsindex.sources.files import (
    DirKept,
    DirListing,
    Entry,
    Reader,
    Source,
    WalkError,
    join_sep,
    split_path,
)

__all__ = ["Books", "Job"]

log = logging.getLogger(__name__)


@dataclass
class Job:
    """Some files of one folder, as a part of a worker job (or written straight from a record)."""

    dir_id: int
    folder: str
    sep: str
    entries: Sequence[Entry]
    known: dict[str, KnownFile]
    survey: bool = False  # the one file read first of a folder whose other files wait (survey.py)


class Books:
    """The run's counters and what results change in the index, for one run."""

    def __init__(self, counters: dict[str, int]) -> None:
        self.counters = counters
        # Folders whose files are still being read: [files left, mtime, has subfolders]. Their time is stored
        # only once the last of them is written, so a run stopped half-way never makes a folder look done.
        self.dir_state: dict[int, list[int]] = {}
        self.survey = Survey(False, 0)
        self.records = Records()

    def from_records(
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
        split = self.records.split(source, reader, item, dir_id, known, fresh, described)
        if split.direct:
            job = Job(dir_id, item.path, item.sep, split.direct, known)
            self.write_results(writer, job, split.results, read=False, sigs=split.sigs)
        self.counters["files_read"] += split.opened + split.wasted  # one header per DICOMDIR series
        self.counters["files_from_records"] += len(split.direct) - split.opened
        return split.to_read

    def write_results(
        self,
        writer: Writer,
        job: Job,
        results: list[FileResult],
        read: bool = True,
        sigs: Sequence[str | None] | None = None,
    ) -> None:
        c = self.counters
        for i, (entry, result) in enumerate(zip(job.entries, results, strict=True)):
            if read and (job.dir_id, entry.name) in self.records.described:
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
        state = self.dir_state.get(job.dir_id)
        filling = self.survey.written(job.dir_id, len(job.entries), job.survey) if read else None
        if filling is not None:
            writer.set_filling(job.dir_id, filling)
        if read and state is not None:
            state[0] -= len(job.entries)
            if state[0] <= 0:
                del self.dir_state[job.dir_id]
                writer.set_dir_state(job.dir_id, state[1], bool(state[2]))

    def keep(self, writer: Writer, item: DirKept) -> None:
        """A folder a quick pass did not list (with the folders below it): what the index has there stands,
        and is counted."""
        folders, files, non_dicom, errors = writer.keep_dir(item.path)
        c = self.counters
        c["folders_kept"] += folders
        c["enumerated_files"] += files
        c["files_unchanged"] += files
        c["files_processed"] += files
        c["non_dicom"] += non_dicom
        c["errors"] += errors

    def walk_error(self, writer: Writer, item: WalkError) -> None:
        self.counters["errors"] += 1
        writer.add_error(item.path, item.reason)
        if item.is_dir:
            writer.mark_subtree_seen(item.path, join_sep(item.path))
        else:
            folder, name = split_path(item.path)
            self.counters["files_removed"] += writer.remove_path(folder, name)
        log.info("could not read a path: %s", item.reason)  # the path itself is patient data: DEBUG only
        log.debug("unreadable path %s: %s", item.path, item.reason)
