"""DICOMweb (QIDO-RS, WADO-RS, WADO-URI) answers built from the index and the files."""

from __future__ import annotations

from pacsindex.dicomweb.dicomjson import INSTANCE, SERIES, STUDY
from pacsindex.dicomweb.retrieve import (
    DICOM,
    Multipart,
    check_json_accept,
    find,
    metadata,
    open_single,
    retrieve_type,
)

__all__ = [
    "DICOM",
    "INSTANCE",
    "Multipart",
    "SERIES",
    "STUDY",
    "check_json_accept",
    "find",
    "metadata",
    "open_single",
    "retrieve_type",
]
