"""The DICOMDIR of a shared zip, encoded in memory from what the index (or the de-identified headers)
says: PS3.10 file-set layout, PS3.3 F.5 basic directory records (PATIENT → STUDY → SERIES → IMAGE), so
RadiAnt, Horos/OsiriX, Weasis and MicroDicom open the zip's folder as a "CD".

pydicom's `FileSet` writes a DICOMDIR only into a folder, beside copies of the files; here nothing is
copied. The file meta and the top-level elements are encoded by pydicom; the directory records (thousands
for a large study, and pydicom's writer takes about a millisecond for each) are encoded here in Explicit
VR Little Endian, element by element in tag order, each item with its defined length. So where every
item starts is known by adding lengths, and each record's offset fields (fixed-width UL, the first and
third element of every record) are filled in place. Tests read the result with pydicom's FileSet, dcmtk
and dicom3tools' dciodvfy.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
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


Record = dict[str, Any]  # keyword -> value (plain values: pydicom's Dataset costs ~0.1 ms an element)


def _record(kind: str) -> Record:
    return {
        "OffsetOfTheNextDirectoryRecord": 0,
        "RecordInUseFlag": 0xFFFF,
        "OffsetOfReferencedLowerLevelDirectoryEntity": 0,
        "DirectoryRecordType": kind,
    }


@dataclass
class _Node:
    record: Record
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
            rec["SpecificCharacterSet"] = "ISO_IR 192"
            rec["PatientName"] = pkey[1]
            rec["PatientID"] = pkey[0]
            patients[pkey] = _Node(rec)
        study_uid = _text(v.get("StudyInstanceUID"))
        if study_uid not in studies:
            rec = _record("STUDY")
            rec["SpecificCharacterSet"] = "ISO_IR 192"
            rec["StudyDate"] = _text(v.get("StudyDate"))
            rec["StudyTime"] = _text(v.get("StudyTime"))
            rec["StudyDescription"] = _text(v.get("StudyDescription"))
            rec["StudyInstanceUID"] = study_uid
            rec["StudyID"] = _text(v.get("StudyID"))
            rec["AccessionNumber"] = _text(v.get("AccessionNumber"))
            studies[study_uid] = _Node(rec)
            patients[pkey].children.append(studies[study_uid])
        series_uid = _text(v.get("SeriesInstanceUID"))
        if series_uid not in series:
            rec = _record("SERIES")
            rec["Modality"] = _text(v.get("Modality"), "OT")
            rec["SeriesInstanceUID"] = series_uid
            rec["SeriesNumber"] = _text(v.get("SeriesNumber"), str(len(series) + 1))
            series[series_uid] = _Node(rec)
            studies[study_uid].children.append(series[series_uid])
        rec = _record(record_type(v.get("SOPClassUID")))
        rec["ReferencedFileID"] = list(image.file_id)
        rec["ReferencedSOPClassUIDInFile"] = _text(v.get("SOPClassUID"))
        rec["ReferencedSOPInstanceUIDInFile"] = _text(v.get("SOPInstanceUID"))
        if v.get("TransferSyntaxUID"):
            rec["ReferencedTransferSyntaxUIDInFile"] = str(v["TransferSyntaxUID"])
        rec["InstanceNumber"] = _text(v.get("InstanceNumber"), str(n))
        series[series_uid].children.append(_Node(rec))
    return list(patients.values())


def _flatten(nodes: list[_Node], out: list[_Node]) -> None:
    for node in nodes:
        node.index = len(out)
        out.append(node)
        _flatten(node.children, out)


_TAGS: dict[str, tuple[int, str]] = {}
_PAD = {"UI": b"\x00"}
_UL_NEXT, _UL_LOWER = 0x00041400, 0x00041420


def _tag(keyword: str) -> tuple[int, str]:
    found = _TAGS.get(keyword)
    if found is None:
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword
        found = _TAGS[keyword] = (tag, dictionary_VR(tag))
    return found


def _element(tag: int, vr: str, value: bytes) -> bytes:
    if len(value) % 2:
        value += _PAD.get(vr, b" ")
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def _encode_record(record: Record) -> bytes:
    """One directory record, Explicit VR Little Endian, elements in tag order."""
    parts = []
    for keyword in sorted(record, key=lambda k: _tag(k)[0]):
        tag, vr = _tag(keyword)
        value = record[keyword]
        if vr == "UL":
            raw = struct.pack("<I", int(value))
        elif vr == "US":
            raw = struct.pack("<H", int(value))
        elif isinstance(value, list | tuple):
            raw = "\\".join(str(v) for v in value).encode("utf-8")
        else:
            raw = str(value if value is not None else "").encode("utf-8")
        parts.append(_element(tag, vr, raw))
    return b"".join(parts)


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
        entropy_srcs=[str(i.values.get("SOPInstanceUID") or "") for i in images]
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
    records = [_encode_record(n.record) for n in flat]
    starts, at = [], len(_encode(ds)) + 12  # the sequence's tag, VR, reserved bytes and length
    for rec in records:
        starts.append(at)
        at += 8 + len(rec)
    for rec in records:  # the two offsets sit where the patching below writes them
        assert rec[:4] == b"\x04\x00\x00\x14" and rec[22:26] == b"\x04\x00\x20\x14"
    out = bytearray()
    for siblings in [roots] + [n.children for n in flat]:
        for a, b in zip(siblings, siblings[1:], strict=False):
            a.record["OffsetOfTheNextDirectoryRecord"] = starts[b.index]
    items = []
    for node, rec in zip(flat, records, strict=True):
        patched = bytearray(rec)
        struct.pack_into("<I", patched, 8, int(node.record["OffsetOfTheNextDirectoryRecord"]))
        lower = starts[node.children[0].index] if node.children else 0
        struct.pack_into("<I", patched, 30, lower)
        items.append(struct.pack("<HHI", 0xFFFE, 0xE000, len(patched)) + bytes(patched))
    if roots:
        ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = starts[roots[0].index]
        ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = starts[roots[-1].index]
    out += _encode(ds)
    out += struct.pack("<HH2sHI", 0x0004, 0x1220, b"SQ", 0, 0xFFFFFFFF)
    out += b"".join(items)
    out += struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return bytes(out)
