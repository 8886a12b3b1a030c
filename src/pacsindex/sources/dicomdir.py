"""DICOMDIR media directories: know a CD/DVD export's files and series from its records, without opening
each file.

A DICOMDIR's PATIENT → STUDY → SERIES → IMAGE records carry the identifying fields of every file it
references. When a folder holds one, the scanner loads it (pydicom's `FileSet`, which reads the DICOMDIR only)
and a referenced file that is new to the index and not newer than the DICOMDIR is indexed from its record.
A file changed since (newer than the DICOMDIR, or different from what the index holds) is read for real,
so a stale DICOMDIR never hides a change. The DICOMDIR itself is never indexed as an image.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pacsindex.dicom.headers import ALL_FIELDS, HeaderRecord, _int, _text

log = logging.getLogger(__name__)


class DicomdirIndex:
    """The records of the DICOMDIRs met in one run, by the absolute path of the files they reference."""

    def __init__(self) -> None:
        self._records: dict[str, tuple[HeaderRecord, int]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def load(self, path: str, mtime_ns: int) -> int:
        """Read a DICOMDIR; returns how many file records it gave (0 when it cannot be read)."""
        from pydicom import dcmread
        from pydicom.fileset import FileSet

        try:
            fileset = FileSet(dcmread(path))
        except Exception as exc:  # a broken DICOMDIR only means its files are read one by one
            log.info("DICOMDIR not usable, its files are read one by one: %s", type(exc).__name__)
            log.debug("DICOMDIR %s: %s", path, exc)
            return 0
        count = 0
        try:
            for instance in fileset:
                try:
                    file_path = os.path.normpath(instance.path)
                except Exception:  # a record whose file ID makes no path
                    continue
                self._records[file_path] = (_record(instance), mtime_ns)
                count += 1
        finally:
            release(fileset)
        return count

    def lookup(self, path: str, mtime_ns: int) -> HeaderRecord | None:
        """The record for a file, if a DICOMDIR not older than the file references it."""
        found = self._records.get(os.path.normpath(path))
        if found is None:
            return None
        record, dicomdir_mtime = found
        return record if mtime_ns <= dicomdir_mtime else None


def release(fileset: Any) -> None:
    """Remove the staging folder pydicom's FileSet makes (in the local temp folder) for writing, which we
    never do, now rather than when the garbage collector gets to it."""
    staging = getattr(fileset, "_stage", {}).get("t")
    if staging is not None:
        staging.cleanup()


def _record(instance: Any) -> HeaderRecord:
    values: dict[str, Any] = {}
    for keyword in (*ALL_FIELDS, "TransferSyntaxUID"):
        try:
            raw = getattr(instance, keyword)
        except (AttributeError, KeyError):
            raw = None
        values[keyword] = _int(raw) if keyword in ("SeriesNumber", "InstanceNumber") else _text(raw)
    return HeaderRecord(**values)
