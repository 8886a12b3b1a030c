"""The header record: the fields pacsindex keeps for one DICOM file (`HeaderRecord`), what reading one file
gave (`FileResult`), the series key, and the value clean-up both header parsers share (text, integers, and
dates written the old ACR-NEMA way normalised to DICOM DA).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ALL_FIELDS",
    "DATE_FIELDS",
    "FIELD_TABLE",
    "FILE_FIELDS",
    "INT_FIELDS",
    "IMAGE_WITHOUT_HEADER",
    "FileResult",
    "HeaderRecord",
    "Status",
    "int_value",
    "finish_values",
    "normalise_date",
    "series_key",
    "text_value",
]

IMAGE_WITHOUT_HEADER = "image without DICOM header"

Status = Literal["dicom", "non_dicom", "error"]

# (keyword, tag, VR) of every field kept. pydicom is imported lazily (it takes half a second), so worker
# processes start fast; tests check this table against pydicom's data dictionary.
FIELD_TABLE: tuple[tuple[str, int, str], ...] = (
    ("PatientName", 0x00100010, "PN"),
    ("PatientID", 0x00100020, "LO"),
    ("PatientBirthDate", 0x00100030, "DA"),
    ("PatientSex", 0x00100040, "CS"),
    ("OtherPatientIDs", 0x00101000, "LO"),
    ("IssuerOfPatientID", 0x00100021, "LO"),
    ("StudyInstanceUID", 0x0020000D, "UI"),
    ("StudyDate", 0x00080020, "DA"),
    ("StudyTime", 0x00080030, "TM"),
    ("StudyDescription", 0x00081030, "LO"),
    ("AccessionNumber", 0x00080050, "SH"),
    ("ReferringPhysicianName", 0x00080090, "PN"),
    ("InstitutionName", 0x00080080, "LO"),
    ("StudyID", 0x00200010, "SH"),
    ("SeriesInstanceUID", 0x0020000E, "UI"),
    ("SeriesNumber", 0x00200011, "IS"),
    ("SeriesDescription", 0x0008103E, "LO"),
    ("Modality", 0x00080060, "CS"),
    ("BodyPartExamined", 0x00180015, "CS"),
    ("SeriesDate", 0x00080021, "DA"),
    ("Manufacturer", 0x00080070, "LO"),
    ("StationName", 0x00081010, "SH"),
    ("InstitutionAddress", 0x00080081, "ST"),
    ("InsurancePlanIdentification", 0x00101050, "LO"),
    ("PatientComments", 0x00104000, "LT"),
    ("SOPClassUID", 0x00080016, "UI"),
    ("SOPInstanceUID", 0x00080018, "UI"),
    ("InstanceNumber", 0x00200013, "IS"),
)
ALL_FIELDS = tuple(k for k, _, _ in FIELD_TABLE)
DATE_FIELDS = frozenset(k for k, _, vr in FIELD_TABLE if vr == "DA")
INT_FIELDS = frozenset({"SeriesNumber", "InstanceNumber"})
# Fields that belong to one file; the rest describe its series, study or patient.
FILE_FIELDS = ("SOPClassUID", "SOPInstanceUID", "InstanceNumber", "TransferSyntaxUID")
# Dates as ACR-NEMA (and some PACS exports) wrote them: YYYY.MM.DD, also with - or /.
_OLD_DATE = re.compile(r"^([0-9]{4})[./-]([0-9]{2})[./-]([0-9]{2})$")


@dataclass(frozen=True, slots=True)
class HeaderRecord:
    """The header fields pacsindex keeps for one DICOM file, under their DICOM keywords (and, in
    snake_case, what is ours: the issuers named in OtherPatientIDsSequence)."""

    PatientName: str | None = None
    PatientID: str | None = None
    PatientBirthDate: str | None = None
    PatientSex: str | None = None
    OtherPatientIDs: str | None = None
    IssuerOfPatientID: str | None = None
    StudyInstanceUID: str | None = None
    StudyDate: str | None = None
    StudyTime: str | None = None
    StudyDescription: str | None = None
    AccessionNumber: str | None = None
    ReferringPhysicianName: str | None = None
    InstitutionName: str | None = None
    StudyID: str | None = None
    SeriesInstanceUID: str | None = None
    SeriesNumber: int | None = None
    SeriesDescription: str | None = None
    Modality: str | None = None
    BodyPartExamined: str | None = None
    SeriesDate: str | None = None
    Manufacturer: str | None = None
    StationName: str | None = None
    InstitutionAddress: str | None = None
    InsurancePlanIdentification: str | None = None
    PatientComments: str | None = None
    SOPClassUID: str | None = None
    SOPInstanceUID: str | None = None
    InstanceNumber: int | None = None
    TransferSyntaxUID: str | None = None
    other_id_issuers: str | None = None  # IssuerOfPatientID of each OtherPatientIDsSequence item

    def series_key(self, parent_dir: str) -> str:
        return series_key(self.SeriesInstanceUID, self.StudyInstanceUID, self.SeriesNumber, parent_dir)


@dataclass(frozen=True, slots=True)
class FileResult:
    """What reading one file gave: a record, or a status and a reason.

    `note` says what was odd about a file that was still read (pydicom's "warn and continue"), so it
    stays visible in `pacsindex problems`; `transient` marks an error that may pass (a network error, a
    timeout, a file another program still has open), so the next run reads the file again."""

    path: str
    status: Status
    record: HeaderRecord | None = None
    reason: str | None = None
    note: str | None = None
    transient: bool = False


def series_key(
    series_uid: str | None, study_uid: str | None, series_number: int | None, parent_dir: str
) -> str:
    """SHA-1 hex of the SeriesInstanceUID; else of "Study|SeriesNumber"; else of "dir|" + the folder."""
    if series_uid:
        basis = series_uid
    elif study_uid and series_number is not None:
        basis = f"{study_uid}|{series_number}"
    else:
        basis = "dir|" + parent_dir
    return hashlib.sha1(basis.encode("utf-8")).hexdigest()


def text_value(value: Any) -> str | None:
    """A DICOM value as stripped text (multi-values joined by backslashes), None when empty."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        parts = [str(v) for v in value]
        text = "\\".join(parts)
    else:
        text = str(value)
    text = text.strip().strip("\x00").strip()
    return text or None


def int_value(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(str(value)))
        except (TypeError, ValueError):
            return None


def normalise_date(value: str | None) -> tuple[str | None, bool]:
    """(a date as DICOM DA YYYYMMDD, whether it had to be rewritten): `1995.03.14` (ACR-NEMA) and
    `1995-03-14` become `19950314`, so date filters and QIDO treat them as dates. Anything else is kept."""
    if not value or len(value) != 10:
        return value, False
    m = _OLD_DATE.match(value)
    if m is None:
        return value, False
    return m[1] + m[2] + m[3], True


def finish_values(values: dict[str, Any], notes: list[str]) -> None:
    """The clean-up both parsers share, in place: old-style dates normalised, each with a note."""
    for keyword in _DATE_KEYS:
        value = values[keyword]
        if value is None or (len(value) == 8 and value.isdigit()):  # the usual case, tested first
            continue
        fixed, changed = normalise_date(value)
        if changed:
            values[keyword] = fixed
            notes.append(f"{keyword} written the old way (YYYY.MM.DD), read as a DICOM date")
        else:
            notes.append(f"{keyword} is not a date as DICOM writes it (YYYYMMDD); kept as written")


_DATE_KEYS = tuple(k for k in ALL_FIELDS if k in DATE_FIELDS)
