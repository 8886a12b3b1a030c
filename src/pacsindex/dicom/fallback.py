"""The slow, thorough way to read a header: pydicom's own parser, up to the last tag pacsindex keeps.

Used for whatever the fast path leaves alone (big endian, deflate, sequences we keep, odd encodings) and as
the reference the tests compare the fast path against. pydicom's warnings are not thrown away: the caller
keeps them as the file's note (pydicom's own "warn and continue")."""

from __future__ import annotations

import logging
import warnings
from typing import IO, Any

from pacsindex.dicom.record import ALL_FIELDS, FIELD_TABLE, INT_FIELDS, int_value, text_value

__all__ = ["LAST_TAG", "SEQUENCES", "TAGS", "parse", "pydicom_values"]

log = logging.getLogger(__name__)

TAGS = [t for _, t, _ in FIELD_TABLE]
LAST_TAG = max(TAGS)  # (0020,0013) InstanceNumber: nothing we need comes after it
# Sequences whose items we keep: OtherPatientIDsSequence, PatientInsurancePlanCodeSequence.
SEQUENCES = frozenset({0x00101002, 0x00100050})
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"

Values = tuple[dict[str, Any], str | None, str | None, bool]


def parse(fp: IO[bytes], size: int, force: bool, notes: list[str]) -> tuple[Any, str | None]:
    """pydicom's parse up to the last tag we need: (dataset, truncation reason or None). pydicom's
    warnings are added to `notes`."""
    from pydicom.dataelem import RawDataElement
    from pydicom.filereader import read_partial

    ends: list[int | None] = []

    def stop_when(tag: int, vr: str | None, length: int) -> bool:
        if int(tag) > LAST_TAG:
            ends.append(-1)  # marker: stopped on purpose
            return True
        ends.append(None if length == 0xFFFFFFFF else fp.tell() + length)
        return False

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = read_partial(fp, stop_when=stop_when, force=force, specific_tags=[*TAGS, *SEQUENCES])  # type: ignore[arg-type]
    for warning in caught:
        text = " ".join(str(warning.message).split())
        if text and text not in notes:
            notes.append(text)
    if ends and ends[-1] == -1:
        return ds, None
    if not ends:
        return ds, "truncated header: no data set after the file meta information"
    # Ran to the end of the file without reaching a tag past the header: was it cut short?
    last_end = ends[-1]
    if last_end is not None and last_end != size:
        return ds, f"truncated header: element ends at byte {last_end} of a {size}-byte file"
    for elem in ds._dict.values():
        if isinstance(elem, RawDataElement) and elem.value is not None and elem.length != 0xFFFFFFFF:
            if len(elem.value) < elem.length:
                return ds, f"truncated header: {elem.tag} is cut short"
    return ds, None


def _get(ds: Any, keyword: str, notes: list[str] | None = None) -> Any:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = ds.get(keyword)
        if notes is not None:
            notes.extend(f"{keyword}: {' '.join(str(w.message).split())}" for w in caught)
        return value
    except Exception as exc:  # a malformed value in one field must not lose the file
        log.debug("unreadable value for %s", keyword, exc_info=True)
        if notes is not None:
            notes.append(f"{keyword} could not be read ({type(exc).__name__}); kept empty")
        return None


def pydicom_values(ds: Any, notes: list[str]) -> Values:
    """(field values, media storage SOP class, transfer syntax, is DICOMDIR) from a pydicom dataset."""
    meta = getattr(ds, "file_meta", None)
    media_class = text_value(_get(meta, "MediaStorageSOPClassUID")) if meta is not None else None
    media_instance = text_value(_get(meta, "MediaStorageSOPInstanceUID")) if meta is not None else None
    syntax = text_value(_get(meta, "TransferSyntaxUID")) if meta is not None else None
    values: dict[str, Any] = {}
    for keyword in ALL_FIELDS:
        raw = _get(ds, keyword, notes)
        values[keyword] = int_value(raw) if keyword in INT_FIELDS else text_value(raw)
    if not values["SOPInstanceUID"]:
        values["SOPInstanceUID"] = media_instance
    other_ids = _items(ds, "OtherPatientIDsSequence")
    values["OtherPatientIDs"] = join(
        values["OtherPatientIDs"], *(text_value(_get(item, "PatientID")) for item in other_ids)
    )
    values["other_id_issuers"] = join(*(text_value(_get(item, "IssuerOfPatientID")) for item in other_ids))
    values["InsurancePlanIdentification"] = join(
        values["InsurancePlanIdentification"],
        *(
            text_value(_get(item, "CodeMeaning")) or text_value(_get(item, "CodeValue"))
            for item in _items(ds, "PatientInsurancePlanCodeSequence")
        ),
    )
    is_dir = media_class == _DICOMDIR_CLASS
    return values, media_class, syntax, is_dir


def _items(ds: Any, keyword: str) -> list[Any]:
    seq = _get(ds, keyword)
    return list(seq) if seq else []


def join(*parts: str | None) -> str | None:
    """Multi-valued text as DICOM writes it: values separated by backslashes, no empties or repeats."""
    seen: list[str] = []
    for part in parts:
        for value in (part or "").split("\\"):
            if value and value not in seen:
                seen.append(value)
    return "\\".join(seen) or None
