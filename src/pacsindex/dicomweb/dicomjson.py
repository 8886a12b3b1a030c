"""The DICOM JSON model (PS3.18 Annex F) for what the index holds: which attributes DICOMweb can show and
match (tag, VR, level, the SQL column), one value as a JSON element, one result row as a JSON object, and the
RetrieveURL of a study, series or instance. Used by `query.py` (QIDO-RS) and `retrieve.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydicom.datadict import tag_for_keyword

STUDY, SERIES, INSTANCE = "study", "series", "instance"
LEVELS = (STUDY, SERIES, INSTANCE)


@dataclass(frozen=True, slots=True)
class Attr:
    """One attribute DICOMweb can show: its tag and VR, its level, where the row has it, how it matches."""

    keyword: str
    tag: str
    vr: str
    level: str
    match: str | None = None  # uid, id, fold, name, date, int, code, codes, exact; None: not matchable
    sql: str | None = None  # the column matched against
    default: bool = True  # shown without includefield


def _a(
    keyword: str, vr: str, level: str, match: str | None = None, sql: str | None = None, **kw: Any
) -> Attr:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return Attr(keyword, f"{tag:08X}", vr, level, match, sql, **kw)


ATTRS: tuple[Attr, ...] = (
    _a("SpecificCharacterSet", "CS", STUDY),
    _a("StudyDate", "DA", STUDY, "date", "st.StudyDate"),
    _a("StudyTime", "TM", STUDY),
    _a("AccessionNumber", "SH", STUDY, "id", "st.AccessionNumber"),
    _a("InstanceAvailability", "CS", STUDY),
    _a("ModalitiesInStudy", "CS", STUDY, "codes", "s.Modality"),
    _a("InstitutionName", "LO", STUDY, "fold", "st.InstitutionName", default=False),
    _a("ReferringPhysicianName", "PN", STUDY, "name", "st.ReferringPhysicianName"),
    _a("StudyDescription", "LO", STUDY, "fold", "st.StudyDescription"),
    _a("RetrieveURL", "UR", STUDY),
    _a("PatientName", "PN", STUDY, "name", "p.PatientName"),
    _a("PatientID", "LO", STUDY, "id", "p.PatientID"),
    _a("IssuerOfPatientID", "LO", STUDY, default=False),
    _a("PatientBirthDate", "DA", STUDY, "date", "p.PatientBirthDate"),
    _a("PatientSex", "CS", STUDY, "exact", "p.PatientSex"),
    _a("OtherPatientIDs", "LO", STUDY, default=False),
    _a("StudyInstanceUID", "UI", STUDY, "uid", "st.StudyInstanceUID"),
    _a("StudyID", "SH", STUDY, "id", "st.StudyID"),
    _a("NumberOfStudyRelatedSeries", "IS", STUDY),
    _a("NumberOfStudyRelatedInstances", "IS", STUDY),
    _a("Modality", "CS", SERIES, "codes", "s.Modality"),
    _a("SeriesDate", "DA", SERIES, default=False),
    _a("Manufacturer", "LO", SERIES, default=False),
    _a("SeriesDescription", "LO", SERIES, "fold", "s.SeriesDescription"),
    _a("StationName", "SH", SERIES, default=False),
    _a("BodyPartExamined", "CS", SERIES, default=False),
    _a("SeriesInstanceUID", "UI", SERIES, "uid", "s.SeriesInstanceUID"),
    _a("SeriesNumber", "IS", SERIES, "int", "s.SeriesNumber"),
    _a("NumberOfSeriesRelatedInstances", "IS", SERIES),
    _a("SOPClassUID", "UI", INSTANCE, "uid", "f.SOPClassUID"),
    _a("SOPInstanceUID", "UI", INSTANCE, "uid", "f.SOPInstanceUID"),
    _a("AvailableTransferSyntaxUID", "UI", INSTANCE),
    _a("InstanceNumber", "IS", INSTANCE, "int", "f.InstanceNumber"),
)
BY_KEYWORD = {a.keyword: a for a in ATTRS}
BY_TAG = {a.tag: a for a in ATTRS}
# Shown at every level, each about the thing the result row is.
EVERY_LEVEL = frozenset({"SpecificCharacterSet", "InstanceAvailability", "RetrieveURL"})
# Aggregates shown only at their own level: a series row does not carry its study's counts.
OWN_LEVEL_ONLY = frozenset(
    {"ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"}
)

_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
_MULTI = frozenset({"CS", "LO", "SH", "UI"})  # text VRs whose values `\\` separates
_NUMBER = frozenset({"IS", "DS", "US", "UL", "SS", "SL", "FL", "FD"})


def element(vr: str, value: Any) -> dict[str, Any]:
    """One attribute in the DICOM JSON model: `{"vr": ..., "Value": [...]}`, or only the VR when empty."""
    if value is None or value == "":
        return {"vr": vr}
    if vr == "PN":
        names = []
        for name in str(value).split("\\"):
            groups = {k: g for k, g in zip(_PN_GROUPS, name.split("="), strict=False) if g}
            names.append(groups)
        return {"vr": vr, "Value": names} if any(names) else {"vr": vr}
    if vr in _NUMBER:
        values: list[Any] = []
        for part in str(value).split("\\") if isinstance(value, str) else [value]:
            try:
                values.append(int(part) if vr != "DS" else float(part))
            except (TypeError, ValueError):
                continue
        return {"vr": vr, "Value": values} if values else {"vr": vr}
    if vr in _MULTI:
        parts = [p for p in str(value).split("\\")]
        return {"vr": vr, "Value": parts}
    return {"vr": vr, "Value": [str(value)]}


def retrieve_url(base_url: str, study: str, series: str | None = None, sop: str | None = None) -> str:
    url = f"{base_url.rstrip('/')}/studies/{quote(study, safe='.')}"
    if series is not None:
        url += f"/series/{quote(series, safe='.')}"
        if sop is not None:
            url += f"/instances/{quote(sop, safe='.')}"
    return url


def to_json(row: Mapping[str, Any], shown: Iterable[Attr], base_url: str, level: str) -> dict[str, Any]:
    """One result row as a DICOM JSON object with the attributes `shown`, keys in tag order."""
    out: dict[str, Any] = {}
    for attr in sorted(shown, key=lambda a: a.tag):
        if attr.keyword == "SpecificCharacterSet":
            out[attr.tag] = element("CS", "ISO_IR 192")  # JSON is UTF-8
        elif attr.keyword == "InstanceAvailability":
            out[attr.tag] = element("CS", "ONLINE")
        elif attr.keyword == "RetrieveURL":
            series = row.get("SeriesInstanceUID") if level != STUDY else None
            sop = row.get("SOPInstanceUID") if level == INSTANCE else None
            out[attr.tag] = element("UR", retrieve_url(base_url, row["StudyInstanceUID"], series, sop))
        else:
            out[attr.tag] = element(attr.vr, row.get(attr.keyword))
    return out
