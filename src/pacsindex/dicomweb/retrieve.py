"""WADO-RS over the index: which files a study, series or instance is; their bytes as a
`multipart/related; type="application/dicom"` body streamed from where they live; their metadata as DICOM
JSON read from the headers; and which media types a client's Accept header allows.

- Files are opened with the reader `sources.reader_for` gives for their path (local, UNC or smb://) and sent
  in pieces of `CHUNK` bytes as the client takes them: nothing is loaded whole into memory and nothing is
  written anywhere. Instances go out exactly as stored, in their own transfer syntax (pacsindex does not
  transcode); each part's Content-Type names it.
- A file of a study or series that has gone missing since indexing is left out and counted in `skipped`
  (the response has started by then); a single instance that is missing is NotFound before anything is sent.
- Metadata is read with pydicom, stopping before the pixel data. Binary values over `BULK_LIMIT` bytes
  (private blobs, overlays) are left out rather than inlined, as there is no bulk data service here.
- No web framework here; the web layer picks the response type and writes the audit log.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from pacsindex.dicom.headers import series_key
from pacsindex.errors import FileChanged, NotAcceptable, NotFound, SourceError, SourceUnreachable
from pacsindex.sources.readers import CHUNK, Readers, coalesce

log = logging.getLogger(__name__)

BULK_LIMIT = 1024
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"


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
    where = ["st.study_key = ?", "st.StudyInstanceUID = ?", "s.SeriesInstanceUID IS NOT NULL"]
    params: list[Any] = [study_uid, study_uid]
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


# -- media types -----------------------------------------------------------------------------------------


def _media_ranges(accept: str | None) -> list[tuple[str, dict[str, str]]]:
    out = []
    for item in (accept or "").split(","):
        kind, *params = (p.strip() for p in item.split(";"))
        if not kind:
            continue
        values = {}
        for p in params:
            name, _, value = p.partition("=")
            values[name.strip().lower()] = value.strip().strip('"').lower()
        out.append((kind.lower(), values))
    return out


def retrieve_type(accept: str | None, *, single: bool) -> str:
    """How to send instances: "multipart" (multipart/related; type="application/dicom"), or "single"
    (the bare file as application/dicom, only for one instance and only when asked for). NotAcceptable
    when the client allows neither (pacsindex renders no images and sends no bulk data)."""
    ranges = _media_ranges(accept)
    if not ranges:
        return "multipart"
    for kind, params in ranges:
        if params.get("q") in ("0", "0.0", "0.00", "0.000"):
            continue
        if kind in ("*/*", "multipart/*") or (
            kind == "multipart/related" and params.get("type", DICOM) in (DICOM, "application/*", "*/*")
        ):
            return "multipart"
        if single and kind in (DICOM, "application/*"):
            return "single"
    raise NotAcceptable(
        'pacsindex sends instances as multipart/related; type="application/dicom" in their stored '
        f"transfer syntax, not as {accept}"
    )


def check_json_accept(accept: str | None) -> str:
    """The JSON media type to answer QIDO-RS and metadata requests with; NotAcceptable for XML and
    anything else that is not JSON."""
    ranges = _media_ranges(accept)
    if not ranges:
        return DICOM_JSON
    for kind, _ in ranges:
        if kind in (DICOM_JSON, "*/*", "application/*"):
            return DICOM_JSON
        if kind == "application/json":
            return "application/json"
    raise NotAcceptable(f"pacsindex answers in {DICOM_JSON} (the DICOM JSON model), not {accept}")


# -- instances -------------------------------------------------------------------------------------------


def _part_type(f: InstanceFile) -> str:
    return f"{DICOM}; transfer-syntax={f.TransferSyntaxUID}" if f.TransferSyntaxUID else DICOM


class Multipart:
    """The instances as one multipart/related body, made while it is sent. Iterate it once."""

    def __init__(self, files: Sequence[InstanceFile], readers: Readers, *, chunk: int = CHUNK) -> None:
        self.files = files
        self.readers = readers
        self.chunk = chunk
        self.boundary = secrets.token_hex(16)  # 128 random bits: never found inside a file
        self.sent = 0
        self.skipped = 0

    @property
    def content_type(self) -> str:
        return f'multipart/related; type="{DICOM}"; boundary={self.boundary}'

    def __iter__(self) -> Iterator[bytes]:
        return coalesce(self._parts(), self.chunk)

    def _parts(self) -> Iterator[bytes]:
        for f in self.files:
            try:
                fh = self.readers(f.path).open(f.path)
            except SourceUnreachable:
                raise  # the NAS is gone, not one file: stop short rather than send a "whole" empty answer
            except (OSError, SourceError) as exc:
                self.skipped += 1
                log.debug("DICOMweb: %s left out: %s", f.path, exc)
                continue
            with fh:
                yield f"--{self.boundary}\r\nContent-Type: {_part_type(f)}\r\n\r\n".encode("ascii", "replace")
                try:
                    while data := fh.read(self.chunk):
                        yield data
                except OSError as exc:
                    # The headers are sent: stop the body short, so the client sees an incomplete answer.
                    raise FileChanged(f"instance {f.SOPInstanceUID} could not be read while sent") from exc
            yield b"\r\n"
            self.sent += 1
        if self.skipped:
            log.info("DICOMweb: %d of %d files not found, left out", self.skipped, len(self.files))
        yield f"--{self.boundary}--\r\n".encode("ascii")


def open_single(f: InstanceFile, readers: Readers, *, chunk: int = CHUNK) -> Iterator[bytes]:
    """One instance's bytes; NotFound before anything is sent when it cannot be opened."""
    try:
        fh = readers(f.path).open(f.path)
    except (OSError, SourceError) as exc:
        raise NotFound(f"instance {f.SOPInstanceUID} is indexed but its file cannot be read now") from exc

    def chunks() -> Iterator[bytes]:
        with fh:
            try:
                while data := fh.read(chunk):
                    yield data
            except OSError as exc:
                raise FileChanged(f"instance {f.SOPInstanceUID} could not be read while sent") from exc

    return chunks()


# -- metadata --------------------------------------------------------------------------------------------


def _drop_bulk(ds: pydicom.Dataset) -> None:
    for elem in list(ds):
        if elem.VR == "SQ":
            for item in elem.value or ():
                _drop_bulk(item)
        elif elem.VR in _BINARY_VRS and elem.value is not None and len(elem.value) > BULK_LIMIT:
            del ds[elem.tag]


def read_metadata(f: InstanceFile, readers: Readers) -> dict[str, Any] | None:
    """One instance's header as a DICOM JSON object; None when its file cannot be read now."""
    try:
        with readers(f.path).open(f.path) as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
    except SourceUnreachable:
        raise  # the NAS is gone: the answer stops short instead of leaving every instance out
    except (OSError, SourceError, InvalidDicomError, ValueError, TypeError, AttributeError, KeyError) as exc:
        log.debug("DICOMweb: metadata of %s not read: %s", f.path, exc)
        return None
    try:
        _drop_bulk(ds)
        out = ds.to_json_dict()
    except (OSError, SourceError, InvalidDicomError, ValueError, TypeError, AttributeError, KeyError) as exc:
        log.debug("DICOMweb: metadata of %s not read: %s", f.path, exc)
        return None
    ts = f.TransferSyntaxUID or getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts:
        out["00083002"] = {"vr": "UI", "Value": [str(ts)]}  # AvailableTransferSyntaxUID
    return dict(sorted(out.items()))


def metadata(files: Sequence[InstanceFile], readers: Readers) -> Iterator[bytes]:
    """A JSON array with the metadata of every instance whose file can be read, made while it is sent."""
    yield b"["
    first = True
    skipped = 0
    for f in files:
        item = read_metadata(f, readers)
        if item is None:
            skipped += 1
            continue
        yield (b"" if first else b",") + json.dumps(item, ensure_ascii=False).encode("utf-8")
        first = False
    if skipped:
        log.info("DICOMweb: metadata of %d of %d files could not be read", skipped, len(files))
    yield b"]"
