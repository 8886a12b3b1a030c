"""The DICOMDIR of a shared zip, encoded in memory from what the index (or the de-identified headers)
says: PS3.10 file-set layout, PS3.3 F.5 basic directory records (PATIENT → STUDY → SERIES → IMAGE), so
RadiAnt, Horos/OsiriX, Weasis and MicroDicom open the zip's folder as a "CD".

pydicom's `FileSet` writes a DICOMDIR only into a folder, beside copies of the files; here nothing is
copied, so the records are encoded directly with pydicom's Dataset and writer. Each record's offset fields
point at the byte where the record's sequence item starts: the directory is encoded once with zero
offsets, read back (pydicom notes where each item starts), the offsets filled in and encoded again. The
offsets are fixed-width (UL), so the second encoding has the same length and layout as the first.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, MediaStorageDirectoryStorage

__all__ = ["Image", "build", "record_type"]

FILE_SET_ID = "PACSINDEX"
# Record types for the non-image objects a series may hold (PS3.3 F.5); everything else is an IMAGE.
_RECORD_TYPES = {
    "1.2.840.10008.5.1.4.1.1.104.1": "ENCAP DOC",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.88.59": "KEY OBJECT DOC",
    "1.2.840.10008.5.1.4.1.1.11.1": "PRESENTATION",
}


def record_type(sop_class: str | None) -> str:
    if sop_class and sop_class.startswith("1.2.840.10008.5.1.4.1.1.88."):
        return "SR DOCUMENT"
    return _RECORD_TYPES.get(sop_class or "", "IMAGE")


@dataclass(frozen=True, slots=True)
class Image:
    """One file of the file-set: where it is (ReferencedFileID components, e.g. DICOM/PA000001/...) and
    the header values its records need (DICOM keywords: PatientID, PatientName, StudyInstanceUID,
    StudyDate, StudyTime, StudyDescription, StudyID, AccessionNumber, SeriesInstanceUID, Modality,
    SeriesNumber, SOPClassUID, SOPInstanceUID, TransferSyntaxUID, InstanceNumber)."""

    file_id: tuple[str, ...]
    values: Mapping[str, Any] = field(default_factory=dict)


def _text(value: Any, fallback: str = "") -> str:
    return fallback if value is None or str(value) == "" else str(value)


def _record(kind: str) -> Dataset:
    ds = Dataset()
    ds.OffsetOfTheNextDirectoryRecord = 0
    ds.RecordInUseFlag = 0xFFFF
    ds.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    ds.DirectoryRecordType = kind
    return ds


@dataclass
class _Node:
    record: Dataset
    children: list[_Node] = field(default_factory=list)
    index: int = -1  # position in DirectoryRecordSequence


def _tree(images: Sequence[Image]) -> list[_Node]:
    patients: dict[tuple[str, str], _Node] = {}
    studies: dict[str, _Node] = {}
    series: dict[str, _Node] = {}
    for n, image in enumerate(images, start=1):
        v = image.values
        pkey = (_text(v.get("PatientID")), _text(v.get("PatientName")))
        if pkey not in patients:
            rec = _record("PATIENT")
            rec.SpecificCharacterSet = "ISO_IR 192"
            rec.PatientName = pkey[1]
            rec.PatientID = pkey[0]
            patients[pkey] = _Node(rec)
        study_uid = _text(v.get("StudyInstanceUID"))
        if study_uid not in studies:
            rec = _record("STUDY")
            rec.SpecificCharacterSet = "ISO_IR 192"
            rec.StudyDate = _text(v.get("StudyDate"))
            rec.StudyTime = _text(v.get("StudyTime"))
            rec.StudyDescription = _text(v.get("StudyDescription"))
            rec.StudyInstanceUID = study_uid
            rec.StudyID = _text(v.get("StudyID"))
            rec.AccessionNumber = _text(v.get("AccessionNumber"))
            studies[study_uid] = _Node(rec)
            patients[pkey].children.append(studies[study_uid])
        series_uid = _text(v.get("SeriesInstanceUID"))
        if series_uid not in series:
            rec = _record("SERIES")
            rec.Modality = _text(v.get("Modality"), "OT")
            rec.SeriesInstanceUID = series_uid
            rec.SeriesNumber = _text(v.get("SeriesNumber"), str(len(series) + 1))
            series[series_uid] = _Node(rec)
            studies[study_uid].children.append(series[series_uid])
        rec = _record(record_type(v.get("SOPClassUID")))
        rec.ReferencedFileID = list(image.file_id)
        rec.ReferencedSOPClassUIDInFile = _text(v.get("SOPClassUID"))
        rec.ReferencedSOPInstanceUIDInFile = _text(v.get("SOPInstanceUID"))
        if v.get("TransferSyntaxUID"):
            rec.ReferencedTransferSyntaxUIDInFile = str(v["TransferSyntaxUID"])
        rec.InstanceNumber = _text(v.get("InstanceNumber"), str(n))
        series[series_uid].children.append(_Node(rec))
    return list(patients.values())


def _flatten(nodes: list[_Node], out: list[_Node]) -> None:
    for node in nodes:
        node.index = len(out)
        out.append(node)
        _flatten(node.children, out)


def _encode(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def build(images: Sequence[Image]) -> bytes:
    """The DICOMDIR for these files, as bytes. Every image needs SOPClassUID, SOPInstanceUID,
    StudyInstanceUID and SeriesInstanceUID (the caller leaves out files that lack one)."""
    roots = _tree(images)
    flat: list[_Node] = []
    _flatten(roots, flat)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid(
        entropy_srcs=[r.record.get("ReferencedSOPInstanceUIDInFile", "") for r in flat]
    )
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    ds.FileSetID = FILE_SET_ID
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.FileSetConsistencyFlag = 0
    ds.DirectoryRecordSequence = [n.record for n in flat]
    # Pass 1: where each item starts.
    first = pydicom.dcmread(io.BytesIO(_encode(ds)), force=True)
    starts = [item.seq_item_tell for item in first.DirectoryRecordSequence]
    # Pass 2: the offsets (0 where there is no next record or no lower level).
    for siblings in [roots] + [n.children for n in flat]:
        for a, b in zip(siblings, siblings[1:], strict=False):
            a.record.OffsetOfTheNextDirectoryRecord = starts[b.index]
    for node in flat:
        if node.children:
            node.record.OffsetOfReferencedLowerLevelDirectoryEntity = starts[node.children[0].index]
    if roots:
        ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = starts[roots[0].index]
        ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = starts[roots[-1].index]
    data = _encode(ds)
    again = pydicom.dcmread(io.BytesIO(data), force=True)
    if [item.seq_item_tell for item in again.DirectoryRecordSequence] != starts:  # pragma: no cover
        raise AssertionError("the DICOMDIR's records moved when their offsets were filled in")
    return data
