"""Files an indexing run knows before opening them: the records of a Firebird catalog and of DICOMDIRs,
and how they combine with file reads (docs/ARCHITECTURE.md, "Records and file reads").

- A catalog's record is the truth for the files it lists: it is signed (catalog label + SHA-1 of the
  record), so a file is unchanged only when its size, time and signature all match, and a corrected row
  reaches the index. A worker's read of a file the catalog described in the same run is dropped.
- A DICOMDIR says which files hold which series and gives their per-file fields; one header per series
  (`DicomdirIndex.result`) gives the rest, so every field is the same as without the DICOMDIR.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from pacsindex.dicom.headers import FileResult, HeaderRecord
from pacsindex.index.writer import KnownFile
from pacsindex.sources.dicomdir import DicomdirIndex
from pacsindex.sources.files import DirListing, Entry, LocalTree, Reader, Source

__all__ = ["Described", "Records", "Split", "describe", "is_unchanged"]

# A catalog's records for one listed folder: file name → (record, signature).
Described = dict[str, tuple[HeaderRecord, str]]


def describe(source: Source, item: DirListing) -> Described | None:
    """A catalog's records for a listed folder's files, with their signatures (None: not a catalog)."""
    catalog = getattr(source, "known_record", None)
    if catalog is None:
        return None
    described: Described = {}
    for entry in item.entries:
        record = catalog(item.path + item.sep + entry.name)
        if record is not None:
            digest = hashlib.sha1(repr(record).encode("utf-8")).hexdigest()
            described[entry.name] = (record, f"{source.label}\x1f{digest}")
    return described


def is_unchanged(old: KnownFile, entry: Entry, described: Described | None, retry_errors: bool) -> bool:
    """Whether a listed file needs no new read: same size and time, not an error that may pass (or any
    error, with `retry_errors`), and for a catalog, the same record as the index holds."""
    if old.size != entry.size or old.mtime_ns != entry.mtime_ns:
        return False
    if old.status == "error" and (old.transient or retry_errors):
        return False
    if described is not None:
        found = described.get(entry.name)
        return found is None or found[1] == old.record_sig
    return True


@dataclass
class Split:
    """Some fresh files of one folder: those known from records (with their results and signatures), the
    rest still to read, and how many headers were read here for DICOMDIR series."""

    direct: list[Entry] = field(default_factory=list)
    results: list[FileResult] = field(default_factory=list)
    sigs: list[str | None] = field(default_factory=list)
    to_read: list[Entry] = field(default_factory=list)
    opened: int = 0  # header reads whose files are in `direct`
    wasted: int = 0  # header reads that failed: those files are read again by a worker


class Records:
    """The records met in one run: DICOMDIRs loaded, files a catalog described or listed."""

    def __init__(self) -> None:
        self.dicomdirs = DicomdirIndex()
        self.described: set[tuple[int, str]] = set()  # written from a catalog's record in this run
        self.catalog_seen: set[tuple[int, str]] = set()  # listed by a catalog in this run

    def split(
        self,
        source: Source,
        reader: Reader,
        item: DirListing,
        dir_id: int,
        known: dict[str, KnownFile],
        fresh: Sequence[Entry],
        described: Described | None,
    ) -> Split:
        """Which of a folder's fresh files are known from records: every file a catalog lists, and new
        files a DICOMDIR in a local tree describes."""
        if isinstance(source, LocalTree):
            for entry in item.entries:
                if entry.name.upper() == "DICOMDIR":
                    self.dicomdirs.load(item.path + item.sep + entry.name, entry.mtime_ns)
        out = Split()
        if described is None and not len(self.dicomdirs):
            out.to_read = list(fresh)
            return out
        opened, wasted = self.dicomdirs.reads, self.dicomdirs.wasted
        # In name order, so which file of a series gives its header does not depend on the listing order.
        for entry in fresh if described is not None else sorted(fresh, key=lambda e: e.name):
            path = item.path + item.sep + entry.name
            sig = None
            result: FileResult | None
            if described is not None:
                found = described.get(entry.name)
                record, sig = found if found is not None else (None, None)
                result = FileResult(path, "dicom", record) if record is not None else None
            elif entry.name in known:
                result = None  # changed since it was indexed: read it for real
            else:
                result = self.dicomdirs.result(path, entry, reader)
            if result is None:
                out.to_read.append(entry)
            else:
                out.direct.append(entry)
                out.results.append(result)
                out.sigs.append(sig)
        if described is not None:
            self.described.update((dir_id, e.name) for e in out.direct)
        out.opened = self.dicomdirs.reads - opened
        out.wasted = self.dicomdirs.wasted - wasted
        return out
