"""DICOMDIR media directories: know a CD/DVD export's files and series from its records, opening one file
per series instead of every file.

A DICOMDIR's PATIENT → STUDY → SERIES → IMAGE records (walked by their offsets) say which files exist and
which series each belongs to, but real DICOMDIRs carry only a few keys per record (pydicom's FileSet
writes the required ones: no SeriesDescription, birth date, sex, institution, insurance...). So the index
never takes its series, study or patient fields from the records: for each series the first referenced
file met is read in full (its header), and the other files of that series are indexed from that header
plus their own IMAGE record (SOPInstanceUID, SOPClassUID, InstanceNumber, transfer syntax). Every field
the index keeps is therefore the same whether or not a DICOMDIR is present; the DICOMDIR saves opening the
other files.

A referenced file is used only when it is new to the index and not newer than the DICOMDIR; a file
changed since (or one whose record lacks its SOPInstanceUID) is read for real, so a stale DICOMDIR never
hides a change. The DICOMDIR itself is never indexed as an image.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pacsindex.dicom.headers import FileResult, HeaderRecord, read_header
from pacsindex.dicom.record import FILE_FIELDS, int_value, text_value

__all__ = ["DicomdirIndex", "release"]

log = logging.getLogger(__name__)

_TRIES = 3  # files of one series tried for its header before its files are all read one by one


class _Opener(Protocol):
    def open(self, path: str) -> Any: ...


class _Listed(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def mtime_ns(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _FileRecord:
    series: str  # SeriesInstanceUID of the record's series
    fields: dict[str, Any]  # the per-file fields the IMAGE record gives
    dicomdir_mtime_ns: int


class DicomdirIndex:
    """The records of the DICOMDIRs met in one run, by the absolute path of the files they reference, and
    the header read for each of their series."""

    def __init__(self) -> None:
        self._records: dict[str, _FileRecord] = {}
        self._headers: dict[str, HeaderRecord] = {}  # by SeriesInstanceUID
        self._failed: dict[str, int] = {}  # series whose header could not be read from a file, and how often
        self.reads = 0  # headers read for a series (those files are indexed from that read)
        self.wasted = 0  # headers that could not be read for a series (those files are read again)

    def __len__(self) -> int:
        return len(self._records)

    def load(self, path: str, mtime_ns: int) -> int:
        """Read a DICOMDIR; returns how many file records it gave (0 when it cannot be read).

        The records are walked here (root → lower levels → next siblings, by their offsets) rather than
        through pydicom's FileSet, which builds a writable file set and took seconds for a few thousand
        records, all in the scanner's main thread."""
        from pydicom import dcmread

        try:
            ds = dcmread(path)
            records = {item.seq_item_tell: item for item in ds.DirectoryRecordSequence}
            root = int(ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity)
        except Exception as exc:  # a broken DICOMDIR only means its files are read one by one
            log.info("DICOMDIR not usable, its files are read one by one: %s", type(exc).__name__)
            log.debug("DICOMDIR %s: %s", path, exc)
            return 0
        folder = os.path.dirname(path)
        count = 0
        seen: set[int] = set()
        pending: list[tuple[int, str | None]] = [(root, None)]  # (offset of a record list, its series)
        while pending:
            offset, series = pending.pop()
            while offset and offset not in seen and offset in records:
                seen.add(offset)  # a loop of offsets in a damaged DICOMDIR ends here
                record = records[offset]
                try:
                    kind = _text(record, _TYPE)
                    own = _text(record, _SERIES_UID) if kind == "SERIES" else series
                    file_id = _text(record, _FILE_ID)
                    if file_id and own and kind != "SERIES":
                        file_path = _key(os.path.join(folder, *file_id.split("\\")))
                        self._records[file_path] = _FileRecord(own, _file_fields(record), mtime_ns)
                        count += 1
                    lower = _offset(record, _LOWER)
                    if lower:
                        pending.append((lower, own))
                    offset = _offset(record, _NEXT)
                except Exception:  # one odd record: skip it, its files are read one by one
                    log.debug("DICOMDIR %s: an unusable record", path, exc_info=True)
                    break
        return count

    def result(self, path: str, entry: _Listed, reader: _Opener) -> FileResult | None:
        """The file's result without opening it (or, for the first file of a series, by reading its
        header); None when the file must be read the ordinary way (then the series' next file is tried
        for its header, up to three files)."""
        found = self._records.get(_key(path))
        if found is None or entry.mtime_ns > found.dicomdir_mtime_ns or not found.fields["SOPInstanceUID"]:
            return None
        header = self._headers.get(found.series)
        if header is None:
            if self._failed.get(found.series, 0) >= _TRIES:
                return None
            first = read_header(path, reader.open, entry.size, entry.name)
            if first.record is None or first.record.SeriesInstanceUID != found.series:
                self.wasted += 1  # read again by a worker, which records why it failed
                self._failed[found.series] = self._failed.get(found.series, 0) + 1
                return None
            self.reads += 1
            self._headers[found.series] = first.record
            return first
        own = {k: v for k, v in found.fields.items() if v is not None}
        return FileResult(path, "dicom", replace(header, **own))


# Tags of the record keys read (DICOMDIRs are explicit VR little endian; values are read raw, since
# pydicom's conversion of every value cost seconds for a few thousand records).
_TYPE, _SERIES_UID, _FILE_ID = 0x00041430, 0x0020000E, 0x00041500
_NEXT, _LOWER = 0x00041400, 0x00041420
_RECORD_KEYS = {  # the per-file fields, as IMAGE (and other leaf) records hold them
    "SOPInstanceUID": 0x00041511,  # ReferencedSOPInstanceUIDInFile
    "SOPClassUID": 0x00041510,  # ReferencedSOPClassUIDInFile
    "TransferSyntaxUID": 0x00041512,  # ReferencedTransferSyntaxUIDInFile
    "InstanceNumber": 0x00200013,
}


def _key(path: str) -> str:
    """A referenced file's path as looked up: file IDs are upper case on the disc, but a CD mounted on
    Linux or copied by Explorer may show them in lower case."""
    return os.path.normpath(path).casefold()


def _raw(record: Any, tag: int) -> Any:
    elem = record._dict.get(tag)
    return None if elem is None else elem.value


def _text(record: Any, tag: int) -> str | None:
    value = _raw(record, tag)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return text_value(value)


def _offset(record: Any, tag: int) -> int:
    value = _raw(record, tag)
    if isinstance(value, bytes):
        return int.from_bytes(value[:4], "little") if len(value) >= 4 else 0
    return int(value or 0)


def _file_fields(record: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for keyword in FILE_FIELDS:
        raw = _text(record, _RECORD_KEYS[keyword])
        values[keyword] = int_value(raw) if keyword == "InstanceNumber" else raw
    return values


def release(fileset: Any) -> None:
    """Remove the staging folder pydicom's FileSet makes (in the local temp folder) for writing, which we
    never do, now rather than when the garbage collector gets to it."""
    staging = getattr(fileset, "_stage", {}).get("t")
    if staging is not None:
        staging.cleanup()
