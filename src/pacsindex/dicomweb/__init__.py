"""DICOMweb (QIDO-RS, WADO-RS, WADO-URI) answers built from the index and the files."""

from __future__ import annotations

from pacsindex.dicomweb.accept import Wanted, check_syntaxes
from pacsindex.dicomweb.bulkdata import BulkBody, open_bulk
from pacsindex.dicomweb.dicomjson import INSTANCE, SERIES, STUDY
from pacsindex.dicomweb.frames import open_frames, parse_frame_list
from pacsindex.dicomweb.retrieve import (
    DICOM,
    InstanceFile,
    Multipart,
    Single,
    check_json_accept,
    find,
    instance_wanted,
    metadata,
    open_single,
    retrieve_type,
)

__all__ = [
    "INSTANCE",
    "SERIES",
    "STUDY",
    "BulkBody",
    "DICOM",
    "InstanceFile",
    "Multipart",
    "Single",
    "Wanted",
    "check_json_accept",
    "check_syntaxes",
    "find",
    "instance_wanted",
    "metadata",
    "open_bulk",
    "open_frames",
    "open_single",
    "parse_frame_list",
    "retrieve_type",
]
