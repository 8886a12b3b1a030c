"""De-identified sharing: each file's header rewritten while the zip is sent, following the DICOM PS3.15
Basic Application Level Confidentiality Profile; the pixel data streamed from the NAS unchanged. The NAS
is only ever read.

The profile is applied by dicognito (`Anonymizer`: every name, ID and UID replaced, dates shifted,
addresses and equipment replaced, PatientIdentityRemoved and DeidentificationMethod set), with a seed
kept per share, so replacement UIDs are consistent within a share (the same study UID in two files
becomes the same new UID, and the DICOMDIR agrees with the files) and differ between shares. What the
profile removes and dicognito keeps (private attributes, overlays, free-text comments and descriptions,
the patient's age, size and weight, other patient ID sequences) is removed here, and PatientBirthDate
emptied (the profile's "Z").

Why the Content-Length can stay exact: a file is cut in two where its Pixel Data element starts. The part
before it (preamble, meta, header) is read, de-identified and encoded in memory: its new length is known
once the header is read. The Pixel Data element itself is copied byte for byte from the NAS: its length
is known from its own header (or, encapsulated, from walking its fragment headers). So
`size = len(new header) + pixel element length`, found when the zip is planned by reading only headers.
The de-identified header (a few KB: private blocks are gone) is kept with the plan, so each header is read
and de-identified once per download (the CPU cost, bench/bench_share.py); when the zip is sent it goes
out, then the pixel element is streamed from the NAS. A source whose size changed since the plan stops
the download (FileChanged) rather than sending a zip that is not what was announced.
Elements after Pixel Data (trailing padding, digital signatures, which the profile removes) are dropped.

A file without top-level pixel data (a structured report), or in a deflated transfer syntax, is
de-identified whole in memory instead. Burned-in text in the pixels cannot be removed this way:
`burned_in_reason` says which series may carry it (BurnedInAnnotation YES, or a modality that usually
does), and the sharer is told before the link is made.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import pydicom
from dicognito.anonymizer import Anonymizer
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from pacsindex.errors import FileChanged
from pacsindex.sources.files import Reader
from pacsindex.sources.readers import CHUNK

__all__ = [
    "BURNED_IN_MODALITIES",
    "DeidFile",
    "Deidentifier",
    "burned_in_reason",
    "plan_in_worker",
]

BURNED_IN_MODALITIES = {
    "US": "ultrasound images usually carry the patient's name in the pixels",
    "SC": "secondary captures are often screenshots with names in the pixels",
    "OT": "'other' images are often scanned documents or screenshots",
    "XC": "external camera photographs may show the patient or labels",
    "ES": "endoscopy captures often carry text in the pixels",
    "DOC": "scanned documents",
}
_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
# PS3.15 E.1-1 "X" (remove) attributes that dicognito leaves in place.
REMOVED = (
    "AdditionalPatientHistory",
    "AdmittingDiagnosesDescription",
    "Allergies",
    "CountryOfResidence",
    "DerivationDescription",
    "EthnicGroup",
    "ImageComments",
    "InstitutionalDepartmentName",
    "MedicalAlerts",
    "OtherPatientIDsSequence",
    "PatientAge",
    "PatientBirthTime",
    "PatientComments",
    "PatientSize",
    "PatientWeight",
    "PerformedProcedureStepDescription",
    "ProtocolName",
    "ReferencedPatientSequence",
    "ReferencedStudySequence",
    "RegionOfResidence",
    "RequestAttributesSequence",
    "SeriesDescription",
    "StudyComments",
    "StudyDescription",
    "TextComments",
)
EMPTIED = ("PatientBirthDate", "PatientSex")  # the profile's "Z": present, but empty
DIR_FIELDS = (
    "PatientID",
    "PatientName",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "StudyID",
    "AccessionNumber",
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
)


def burned_in_reason(modality: str | None, burned_in_annotation: str | None) -> str | None:
    """Why a series' pixels may carry identifying text, or None."""
    if (burned_in_annotation or "").strip().upper() == "YES":
        return "the images say they carry burned-in annotation (BurnedInAnnotation YES)"
    return BURNED_IN_MODALITIES.get((modality or "").strip().upper())


@dataclass(frozen=True, slots=True)
class DeidFile:
    """One file's de-identified plan: its new size, the new header values the DICOMDIR needs, and where
    the pixel element lies in the source (None: the file is de-identified whole)."""

    size: int
    values: Mapping[str, Any]
    pixel_start: int | None
    pixel_length: int
    header: bytes = field(default=b"", repr=False)
    source_size: int = 0


def _value(ds: Dataset, keyword: str) -> Any:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    return str(value) if not isinstance(value, int) else value


class Deidentifier:
    """De-identifies the files of one share (one seed: consistent replacements across its files)."""

    def __init__(self, seed: str) -> None:
        self.seed = seed
        # One Anonymizer for the share: its replacements depend only on the seed and the original value.
        self._anonymizer = Anonymizer(seed=seed)

    def _clean(self, ds: Dataset) -> None:
        self._anonymizer.anonymize(ds)
        ds.remove_private_tags()
        for elem in list(ds):
            if 0x6000 <= elem.tag.group <= 0x60FF and elem.tag.group % 2 == 0:  # overlays
                del ds[elem.tag]
        for keyword in REMOVED:
            if keyword in ds:
                delattr(ds, keyword)
        for keyword in EMPTIED:
            if keyword in ds:
                setattr(ds, keyword, "")
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
        code.CodeMeaning = "Basic Application Confidentiality Profile"
        ds.DeidentificationMethodCodeSequence = [code]

    def _header(self, fh: IO[bytes]) -> tuple[bytes, Dataset, int | None]:
        """The de-identified bytes of the file up to its Pixel Data element, the dataset, and where that
        element starts in the source (None when the file has none at the top level, or is deflated: then
        the bytes are the whole de-identified file)."""
        try:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
        except (InvalidDicomError, ValueError, EOFError, struct.error) as exc:
            raise OSError(f"not a readable DICOM header ({exc})") from exc
        stopped_at: int | None = fh.tell()
        assert stopped_at is not None
        tag = fh.read(8)
        ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
        little = ts != ExplicitVRBigEndian
        if len(tag) < 4:
            stopped_at = None
        else:
            group, element = struct.unpack("<HH" if little else ">HH", tag[:4])
            if (group << 16 | element) not in _PIXEL_TAGS:
                stopped_at = None
        if ts == DeflatedExplicitVRLittleEndian:
            fh.seek(0)
            ds = pydicom.dcmread(fh, force=True)
            stopped_at = None
        elif stopped_at is None:
            fh.seek(0)
            ds = pydicom.dcmread(fh, force=True)  # no pixel data: the whole dataset was the header
        if not getattr(ds, "file_meta", None):
            ds.file_meta = FileMetaDataset()
        if "TransferSyntaxUID" not in ds.file_meta:
            implicit, _ = ds.original_encoding
            ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
        if "SOPClassUID" in ds:
            ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        if "SOPInstanceUID" in ds:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        self._clean(ds)
        ds.preamble = b"\x00" * 128
        buf = io.BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        return buf.getvalue(), ds, stopped_at

    def plan(self, reader: Reader, path: str) -> DeidFile:
        """Read one file's header and say what its de-identified copy will be. OSError when it cannot."""
        with reader.open(path) as fh:
            header, ds, start = self._header(fh)
            length = 0 if start is None else _element_length(fh, start, ds)
            source_size = fh.seek(0, io.SEEK_END)
        values = {k: _value(ds, k) for k in DIR_FIELDS}
        values["TransferSyntaxUID"] = str(ds.file_meta.TransferSyntaxUID)
        return DeidFile(len(header) + length, values, start, length, header, source_size)

    def chunks(
        self, reader: Reader, path: str, name: str, planned: DeidFile, chunk: int = CHUNK
    ) -> Iterator[bytes]:
        """The de-identified file: exactly `planned.size` bytes, or FileChanged."""
        try:
            with reader.open(path) as fh:
                if fh.seek(0, io.SEEK_END) != planned.source_size:
                    raise FileChanged(f"{name} changed while it was being sent")
                yield planned.header
                start = planned.pixel_start
                if start is None:
                    return
                fh.seek(start)
                left = planned.pixel_length
                while left:
                    data = fh.read(min(left, chunk))
                    if not data:
                        raise FileChanged(f"{name} got shorter while it was being sent")
                    left -= len(data)
                    yield data
        except OSError as exc:
            raise FileChanged(f"{name} could not be read while it was being sent ({exc})") from exc


def _element_length(fh: IO[bytes], start: int, ds: Dataset) -> int:
    """How many bytes the Pixel Data element starting at `start` takes, header included."""
    implicit, little = ds.original_encoding
    ts = ds.file_meta.get("TransferSyntaxUID")
    if ts is not None:
        implicit, little = ts.is_implicit_VR, ts.is_little_endian
    end = "<" if little else ">"
    fh.seek(start)
    head = fh.read(12)
    if implicit:
        header_len, length = 8, struct.unpack(end + "I", head[4:8])[0]
    else:
        vr = head[4:6]
        if vr in (b"OB", b"OW", b"OF", b"OD", b"UN", b"OL", b"OV"):
            header_len, length = 12, struct.unpack(end + "I", head[8:12])[0]
        else:
            header_len, length = 8, struct.unpack(end + "H", head[6:8])[0]
    if length != 0xFFFFFFFF:
        size = fh.seek(0, io.SEEK_END)
        if start + header_len + length > size:
            raise OSError("the pixel data is cut short")
        return int(header_len + length)
    # Encapsulated: items, each with its own length, up to the sequence delimiter.
    pos = start + header_len
    while True:
        fh.seek(pos)
        item = fh.read(8)
        if len(item) < 8:
            raise OSError("the encapsulated pixel data is cut short")
        group, element, item_len = struct.unpack(end + "HHI", item)
        pos += 8
        if (group, element) == (0xFFFE, 0xE0DD):
            return pos - start
        if (group, element) != (0xFFFE, 0xE000) or item_len == 0xFFFFFFFF:
            raise OSError("the encapsulated pixel data is damaged")
        pos += item_len


_WORKER_DEIDENTIFIERS: dict[str, Deidentifier] = {}


def plan_in_worker(seed: str, settings: Any, path: str) -> DeidFile | str:
    """`Deidentifier(seed).plan` for one file in a worker process (the header work is CPU-bound, so it
    runs in processes, not threads): the plan, or why the file cannot be read."""
    from pacsindex.share.download import why
    from pacsindex.sources.files import reader_for

    deid = _WORKER_DEIDENTIFIERS.get(seed)
    if deid is None:
        if len(_WORKER_DEIDENTIFIERS) > 8:
            _WORKER_DEIDENTIFIERS.clear()
        deid = _WORKER_DEIDENTIFIERS[seed] = Deidentifier(seed)
    try:
        return deid.plan(reader_for(path, settings), path)
    except OSError as exc:
        return why(exc)
