"""WADO-RS over the index: which files a study, series or instance is; their bytes as a
`multipart/related; type="application/dicom"` body streamed from where they live; their metadata as DICOM
JSON read from the headers; and which media types a client's Accept header allows.

- Files are opened with the reader `sources.reader_for` gives for their path (local, UNC or smb://) and sent
  in pieces of `CHUNK` bytes as the client takes them: nothing is loaded whole into memory and nothing is
  written anywhere. Instances go out exactly as stored, in their own transfer syntax (pacsindex does not
  transcode); each part's Content-Type names it.
- A file without a Part 10 header (a raw dataset) goes out behind one made for it (`part10`).
- Before a study or series is sent, each file is opened once to see how it goes out; one that has gone
  missing since indexing is left out, counted in `missing` and named in a Warning header, as the headers
  are not sent yet (one that goes missing after that is left out too, counted in `skipped`). A single
  instance that is missing is NotFound before anything is sent.
- Metadata is read with pydicom, stopping before the pixel data. Binary values over `BULK_LIMIT` bytes
  (private blobs, overlays) and the pixel data are BulkDataURIs (`bulkdata`).
- No web framework here; the web layer picks the response type and writes the audit log.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import pydicom
from pydicom.errors import InvalidDicomError

from pacsindex.dicom.headers import series_key
from pacsindex.dicomweb.accept import (
    DICOM,
    DICOM_JSON,
    Wanted,
    check_json_accept,
    check_syntaxes,
    instance_wanted,
    retrieve_type,
)
from pacsindex.dicomweb.bulkdata import BULK_LIMIT, add_bulk_uris
from pacsindex.dicomweb.part10 import Framing, frame_file, syntax_of
from pacsindex.errors import FileChanged, NotFound, SourceError
from pacsindex.sources.readers import CHUNK, Readers, coalesce

__all__ = [
    "DICOM",
    "DICOM_JSON",
    "InstanceFile",
    "Multipart",
    "Single",
    "Target",
    "Wanted",
    "check_json_accept",
    "find",
    "instance_url",
    "instance_wanted",
    "metadata",
    "open_single",
    "read_metadata",
    "retrieve_type",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InstanceFile:
    """One file to send: where it lives and which instance it holds."""

    path: str
    StudyInstanceUID: str
    SeriesInstanceUID: str
    SOPInstanceUID: str
    TransferSyntaxUID: str | None


@dataclass(frozen=True, slots=True)
class Target:
    """What a WADO-RS path names, for the audit log: the study, and the series and instance if given."""

    StudyInstanceUID: str
    SeriesInstanceUID: str | None = None
    SOPInstanceUID: str | None = None
    PatientID: str | None = None
    files: tuple[InstanceFile, ...] = ()


def find(
    conn: sqlite3.Connection, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> Target:
    """The files of a study, a series of it, or one instance of that series, in series and instance order;
    NotFound when the index has no such study, series or instance (or none with a SOPInstanceUID)."""
    where = ["st.StudyInstanceUID = ?", "s.SeriesInstanceUID IS NOT NULL"]
    params: list[Any] = [study_uid]
    what = "study"
    if series_uid is not None:
        where += ["s.SeriesKey = ?", "s.SeriesInstanceUID = ?"]
        params += [series_key(series_uid, None, None, ""), series_uid]
        what = "series in that study"
    if sop_uid is not None:
        where.append("f.SOPInstanceUID = ?")
        params.append(sop_uid)
        what = "instance in that series"
    sql = f"""SELECT d.path || d.sep || f.name AS path, st.StudyInstanceUID, s.SeriesInstanceUID,
                     f.SOPInstanceUID, f.TransferSyntaxUID, p.PatientID
              FROM files f JOIN dirs d ON d.id = f.dir_id JOIN series s ON s.id = f.series_id
                   JOIN studies st ON st.id = s.study_id JOIN patients p ON p.id = st.patient_id
              WHERE f.SOPInstanceUID IS NOT NULL AND {" AND ".join(where)}
              ORDER BY s.SeriesNumber IS NULL, s.SeriesNumber, s.id, f.InstanceNumber IS NULL,
                       f.InstanceNumber, f.id"""
    rows = conn.execute(sql, params).fetchall()
    if not rows:
        raise NotFound(f"no {what} with that UID in the index")
    files = tuple(
        InstanceFile(
            path=r["path"],
            StudyInstanceUID=r["StudyInstanceUID"],
            SeriesInstanceUID=r["SeriesInstanceUID"],
            SOPInstanceUID=r["SOPInstanceUID"],
            TransferSyntaxUID=r["TransferSyntaxUID"],
        )
        for r in rows
    )
    if sop_uid is not None:
        files = files[:1]  # the same instance copied to two folders: send one
    return Target(study_uid, series_uid, sop_uid, rows[0]["PatientID"], files)


# -- instances -------------------------------------------------------------------------------------------


def _part_type(syntax: str | None) -> str:
    return f"{DICOM}; transfer-syntax={syntax}" if syntax else DICOM


PROBE_BATCH = 64  # files whose headers are fetched at once (SMB: 16 KiB each, many in flight)


def _frame(f: InstanceFile, opener: Callable[[str], IO[bytes]]) -> Framing | None:
    """How `f` goes out, or None when it cannot be opened now."""
    try:
        with opener(f.path) as fh:
            return frame_file(fh, f.TransferSyntaxUID)
    except (OSError, SourceError) as exc:
        log.debug("DICOMweb: %s cannot be read: %s", f.path, exc)
        return None


def _frame_all(files: Sequence[InstanceFile], readers: Readers) -> list[Framing | None]:
    """`_frame` for each file; a reader with `prefetch` (SMB) fetches a batch's headers in one go. Raises
    SourceUnreachable when the NAS cannot be connected at all (503, not "every file missing")."""
    out: list[Framing | None] = []
    for start in range(0, len(files), PROBE_BATCH):
        batch = files[start : start + PROBE_BATCH]
        openers: dict[int, Callable[[str], IO[bytes]]] = {}
        for f in batch:
            reader = readers(f.path)
            if id(reader) not in openers:
                prefetch = getattr(reader, "prefetch", None)
                paths = [g.path for g in batch if readers(g.path) is reader]
                openers[id(reader)] = prefetch(paths) if prefetch is not None else reader.open
            out.append(_frame(f, openers[id(reader)]))
    return out


class Multipart:
    """The instances as one multipart/related body, made while it is sent. Iterate it once.

    Made, it has opened every file once: `missing` counts those that cannot be read now (left out, and
    `warning` says so), `syntaxes` are the stored transfer syntaxes of the rest. NotFound if none is left."""

    def __init__(self, files: Sequence[InstanceFile], readers: Readers, *, chunk: int = CHUNK) -> None:
        self.readers = readers
        self.chunk = chunk
        self.boundary = secrets.token_hex(16)  # 128 random bits: never found inside a file
        self.sent = 0
        self.total = len(files)
        framed = zip(files, _frame_all(files, readers), strict=True)
        self.files = [(f, framing) for f, framing in framed if framing is not None]
        self.missing = self.skipped = len(files) - len(self.files)
        if self.missing:
            log.info("DICOMweb: %d of %d files cannot be read now, left out", self.missing, self.total)
        if not self.files:
            raise NotFound(f"none of the {self.total} indexed files can be read now")

    @property
    def content_type(self) -> str:
        return f'multipart/related; type="{DICOM}"; boundary={self.boundary}'

    @property
    def syntaxes(self) -> set[str | None]:
        return {framing.TransferSyntaxUID for _, framing in self.files}

    @property
    def warning(self) -> str | None:
        """A Warning header value when files are left out."""
        if not self.missing:
            return None
        return f'299 pacsindex "{self.missing} of {self.total} instances could not be read and are left out"'

    def check(self, wanted: Wanted) -> None:
        """NotAcceptable when the client named transfer syntaxes these instances are not stored in."""
        check_syntaxes(wanted, self.syntaxes)

    def __iter__(self) -> Iterator[bytes]:
        return coalesce(self._parts(), self.chunk)

    def _parts(self) -> Iterator[bytes]:
        for f, framing in self.files:
            try:
                fh = self.readers(f.path).open(f.path)
            except (OSError, SourceError) as exc:
                self.skipped += 1
                log.info("DICOMweb: a file went missing while its series was sent, left out")
                log.debug("DICOMweb: %s left out: %s", f.path, exc)
                continue
            with fh:
                part = _part_type(framing.TransferSyntaxUID or f.TransferSyntaxUID)
                yield f"--{self.boundary}\r\nContent-Type: {part}\r\n\r\n".encode("ascii", "replace")
                if framing.prefix:
                    yield framing.prefix
                try:
                    while data := fh.read(self.chunk):
                        yield data
                except OSError as exc:
                    # The headers are sent: stop the body short, so the client sees an incomplete answer.
                    raise FileChanged(f"instance {f.SOPInstanceUID} could not be read while sent") from exc
            yield b"\r\n"
            self.sent += 1
        yield f"--{self.boundary}--\r\n".encode("ascii")


class Single:
    """One instance's bytes (behind a made file meta header when it has none), `length` of them exactly;
    the file is open from when this is made until the bytes are sent."""

    def __init__(self, f: InstanceFile, readers: Readers, *, chunk: int = CHUNK) -> None:
        try:
            self.fh = readers(f.path).open(f.path)
        except (OSError, SourceError) as exc:
            raise NotFound(f"instance {f.SOPInstanceUID} is indexed but its file cannot be read now") from exc
        try:
            self.framing = frame_file(self.fh, f.TransferSyntaxUID)
        except OSError as exc:
            self.fh.close()
            raise NotFound(f"instance {f.SOPInstanceUID} is indexed but its file cannot be read now") from exc
        self.file, self.chunk = f, chunk

    @property
    def length(self) -> int:
        return self.framing.length

    @property
    def TransferSyntaxUID(self) -> str | None:  # noqa: N802  (the DICOM keyword)
        return self.framing.TransferSyntaxUID

    def check(self, wanted: Wanted) -> None:
        try:
            check_syntaxes(wanted, [self.TransferSyntaxUID])
        except BaseException:
            self.fh.close()
            raise

    def __iter__(self) -> Iterator[bytes]:
        with self.fh:
            if self.framing.prefix:
                yield self.framing.prefix
            left = self.framing.size
            try:
                while left:
                    data = self.fh.read(min(self.chunk, left))
                    if not data:
                        break
                    left -= len(data)
                    yield data
            except OSError as exc:
                left = -1
                cause: Exception | None = exc
            else:
                cause = None
            if left:
                what = f"instance {self.file.SOPInstanceUID}"
                raise FileChanged(f"{what} could not be read while sent") from cause


def open_single(f: InstanceFile, readers: Readers, *, chunk: int = CHUNK) -> Single:
    """One instance's bytes; NotFound before anything is sent when it cannot be opened."""
    return Single(f, readers, chunk=chunk)


# -- metadata --------------------------------------------------------------------------------------------


def instance_url(base: str, f: InstanceFile) -> str:
    return f"{base}/studies/{f.StudyInstanceUID}/series/{f.SeriesInstanceUID}/instances/{f.SOPInstanceUID}"


def _pixel_data_vr(fh: Any, ds: pydicom.Dataset) -> str | None:
    """ "OB" or "OW" when the file's next element is the pixel data, else None."""
    head = fh.read(6)
    little = ds.original_encoding[1]
    if head[:4] != (b"\xe0\x7f\x10\x00" if little else b"\x7f\xe0\x00\x10"):
        return None
    if not ds.original_encoding[0] and head[4:6] in (b"OB", b"OW"):
        return str(head[4:6].decode())
    return "OW" if int(ds.get("BitsAllocated") or 8) > 8 else "OB"


def read_metadata(f: InstanceFile, readers: Readers, base: str | None = None) -> dict[str, Any] | None:
    """One instance's header as a DICOM JSON object, with BulkDataURIs under `base` for large binary
    values and the pixel data (without `base`, those are left out); None when its file cannot be read now."""
    try:
        with readers(f.path).open(f.path) as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
            pixel_vr = _pixel_data_vr(fh, ds)
        out = ds.to_json_dict(bulk_data_threshold=BULK_LIMIT, bulk_data_element_handler=lambda _: "bulk")
    except (OSError, SourceError, InvalidDicomError, ValueError, TypeError, AttributeError, KeyError) as exc:
        log.debug("DICOMweb: metadata of %s not read: %s", f.path, exc)
        return None
    if base is None:
        _drop_bulk(out)
    else:
        url = instance_url(base, f)
        if pixel_vr:
            out["7FE00010"] = {"vr": pixel_vr, "BulkDataURI": ""}
        add_bulk_uris(out, url)
    ts = f.TransferSyntaxUID or getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    ts = ts or syntax_of(ds)  # a raw dataset: what its encoding is, as it is sent (part10)
    if ts:
        out["00083002"] = {"vr": "UI", "Value": [str(ts)]}  # AvailableTransferSyntaxUID
    return dict(sorted(out.items()))


def _drop_bulk(item: dict[str, Any]) -> None:
    for key in list(item):
        value = item[key]
        if "BulkDataURI" in value:
            del item[key]
        elif value.get("vr") == "SQ":
            for child in value.get("Value") or ():
                _drop_bulk(child)


def metadata(files: Sequence[InstanceFile], readers: Readers, base: str | None = None) -> Iterator[bytes]:
    """A JSON array with the metadata of every instance whose file can be read, made while it is sent."""
    yield b"["
    first = True
    skipped = 0
    for f in files:
        item = read_metadata(f, readers, base)
        if item is None:
            skipped += 1
            continue
        yield (b"" if first else b",") + json.dumps(item, ensure_ascii=False).encode("utf-8")
        first = False
    if skipped:
        log.info("DICOMweb: metadata of %d of %d files could not be read", skipped, len(files))
    yield b"]"
